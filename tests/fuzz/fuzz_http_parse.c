/* libFuzzer target: the agent's HTTP/1.x parser (src/agent/http_parse.c),
 * which reads both the server's responses and the requests of anything on
 * the local endpoint, must never crash or read out of bounds whatever
 * arrives, in whatever pieces. The first byte picks the mode and the piece
 * size; the rest is fed, one message after the other as a server reads
 * pipelined requests. `make fuzz` runs it. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "agent/http_parse.h"

static struct xl_http_parser p;

static void on_body(void *ctx, const char *d, size_t n)
{
    size_t *sum = ctx;

    *sum += (unsigned char)d[0] + (unsigned char)d[n - 1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct xl_err err = {0};
    size_t sum = 0, off = 1, step;
    bool request;

    if (size < 1)
        return 0;
    request = data[0] & 1;
    step = (data[0] >> 1) ? (size_t)(data[0] >> 1) : size;
    if (request)
        xl_http_parser_init_request(&p);
    else
        xl_http_parser_init_response(&p);
    while (off < size) {
        size_t k = size - off < step ? size - off : step, used = 0;

        if (xl_http_parser_feed(&p, (const char *)data + off, k, &used, on_body, &sum, &err) !=
            XL_OK)
            return 0;
        off += used;
        if (xl_http_parser_done(&p)) {
            if (request &&
                (strlen(p.method) > XL_HTTP_METHOD_MAX || strlen(p.target) > XL_HTTP_TARGET_MAX))
                __builtin_trap();
            if (request)
                xl_http_parser_init_request(&p);
            else
                xl_http_parser_init_response(&p);
        } else if (used != k) {
            __builtin_trap();
        }
    }
    xl_http_parser_eof(&p, &err);
    return (int)(sum & 0);
}
