/* placeholder */ typedef int xl_placeholder_srv;
