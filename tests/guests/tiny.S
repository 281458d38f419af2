/* tests/guests/tiny.S - minimal PVH guests that exercise one VMM path each.
 * Built once per variant with -DVARIANT_x (see tests/tests.mk). They run in
 * 32-bit protected mode, as PVH enters them, and never enable paging. */
#define COM1 0x3f8
#define POWEROFF 0x501
#define PVPANIC 0x505
#define HCALL 0x510

	.section .note.pvh, "a"
	.align 4
	.long 4            /* namesz */
	.long 4            /* descsz */
	.long 18           /* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long _start

	.text
	.code32
	.globl _start
_start:
	mov $0x200000, %esp
	lea msg, %esi
1:	movb (%esi), %al
	test %al, %al
	jz 2f
	mov $COM1, %dx
	.globl console_out
console_out:               /* the last exit before a triple fault is here */
	out %al, %dx
	inc %esi
	jmp 1b
2:
#if defined(VARIANT_hello)
	mov $POWEROFF, %dx
	mov $7, %al
	out %al, %dx
#elif defined(VARIANT_triple)
	lidt null_idt       /* no IDT: the next exception triple-faults */
	ud2
#elif defined(VARIANT_panic)
	mov $PVPANIC, %dx
	in %dx, %al          /* supported events */
	mov $1, %al
	out %al, %dx
#elif defined(VARIANT_reset)
	mov $0xcf9, %dx
	mov $0x06, %al
	out %al, %dx
#elif defined(VARIANT_hostile)
	/* Hypercalls and port accesses a hostile guest might make; each must
	 * be refused without harming the VMM. Then print "survived". */
	mov $HCALL, %dx
	mov $0xfffffff8, %eax      /* block outside RAM */
	out %eax, %dx
	mov $0x1001, %eax          /* unaligned block */
	out %eax, %dx
	mov $0x7fff8, %eax         /* random request: buffer outside RAM */
	movl $2, 0x7fff8
	movl $0, 0x7fffc
	movl $0xfffff000, 0x80000
	movl $0, 0x80004
	movl $16, 0x80008
	movl $0, 0x8000c
	out %eax, %dx
	movl $2, 0x7fff8           /* random request: huge length */
	movl $0x1000, 0x80000
	movl $0xffffffff, 0x80008
	movl $0xffffffff, 0x8000c
	out %eax, %dx
	movl $3, 0x7fff8           /* fault record outside RAM */
	movl $0xfffff000, 0x80000
	out %eax, %dx
	movl $3, 0x7fff8           /* fault record with a bad magic */
	movl $0x1000, 0x80000
	movl $0, 0x80004
	out %eax, %dx
	movl $99, 0x7fff8          /* unknown op */
	out %eax, %dx
	mov $HCALL, %dx            /* wrong widths */
	out %al, %dx
	out %ax, %dx
	in %dx, %al
	mov $0xcf8, %dx            /* unclaimed ports, every width */
	out %eax, %dx
	in %dx, %eax
	mov $0x3fa, %dx            /* a word access to the byte-wide UART */
	in %dx, %ax
	mov $0xfec00000, %eax      /* IOAPIC via MMIO is in-kernel; an unclaimed MMIO read: */
	mov 0xd0000000, %eax
	movl $0x12345678, 0xd0000000
	lea ok, %esi
3:	movb (%esi), %al
	test %al, %al
	jz 4f
	mov $COM1, %dx
	out %al, %dx
	inc %esi
	jmp 3b
4:	mov $POWEROFF, %dx
	mov $0, %al
	out %al, %dx
#elif defined(VARIANT_spin)
	/* A kernel stuck in a loop: no exits, RIP in one place. */
6:	jmp 6b
#elif defined(VARIANT_count)
	/* "a\n" .. "z\n", a spin between lines, then power-off 0: the guest
	 * of the kept snapshot fixture (tests/fixtures/snapshot-v1). */
	mov $'a', %bl
7:	mov $COM1, %dx
	mov %bl, %al
	out %al, %dx
	mov $'\n', %al
	out %al, %dx
	mov $200000, %ecx
8:	loop 8b
	inc %bl
	cmp $'z' + 1, %bl
	jne 7b
	mov $POWEROFF, %dx
	mov $0, %al
	out %al, %dx
#else
#error "no variant"
#endif
5:	jmp 5b

	.data
msg:	.asciz "tiny guest\n"
ok:	.asciz "survived\n"
	.align 8
null_idt:
	.word 0
	.long 0
