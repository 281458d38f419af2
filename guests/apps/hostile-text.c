/* A program whose text attacks the terminal of whoever reads trialvm's
 * diagnosis: it prints terminal controls (ESC[2J clears the screen, BEL),
 * a right-to-left override (U+202E) and bytes that are not UTF-8 to the
 * console, then dies of SIGSEGV in a function whose symbol name holds the
 * same (the ELF symbol table takes any bytes). Run it under a file name
 * that holds them too. trialvm must show all of it escaped on stderr and
 * keep every byte in report.json (invalid ones as \xNN). */
#include <stdio.h>

#define HOSTILE "\033[2J\a\342\200\256"

/* The symbol name: "crash" ESC "[2J" BEL U+202E "here" 0xff. */
__attribute__((noinline)) void crash_here(volatile int *p) __asm__("\"crash\033[2J\a\342\200\256here\377\"");
__attribute__((noinline)) void crash_here(volatile int *p)
{
	*p = 42;
}

int main(int argc, char **argv)
{
	printf("hostile-text: " HOSTILE "reversed \377\376 not UTF-8, argv[0] %s\n", argc > 0 ? argv[0] : "?");
	fflush(stdout);
	crash_here((volatile int *)0);
	return 0;
}
