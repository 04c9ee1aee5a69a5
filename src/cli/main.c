int main(void) { return 1; } /* replaced by the real cli entry point */
