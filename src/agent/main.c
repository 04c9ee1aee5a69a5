int main(void) { return 1; } /* replaced by the real agent entry point */
