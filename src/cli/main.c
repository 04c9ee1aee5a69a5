/* xluo: the command-line client; everything is in xlcli (src/cli/cli.c). */
#include <stdio.h>

#include "cli.h"

int main(int argc, char **argv)
{
    return xl_cli_main(argc, argv, stdout, stderr);
}
