/* trialos entry: PVH 32-bit entry, long-mode switch, trap stubs, syscall entry. */
#include "kernel.h"

#define PHYS(x) ((x) - KERNEL_VMA)

/* ---- PVH note: QEMU and trialvm find the 32-bit entry here ---- */
	.section .note.Xen, "a", @note
	.p2align 2
	.long 4                 /* namesz */
	.long 4                 /* descsz */
	.long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long pvh_start32

/* ---- 32-bit entry (runs at its physical address) ---- */
	.section .boot, "ax"
	.code32
	.globl pvh_start32
pvh_start32:
	cli
	cld
	mov %ebx, %esi                  /* hvm_start_info (physical) */
	mov %cr4, %eax
	or $0x620, %eax                 /* PAE | OSFXSR | OSXMMEXCPT */
	mov %eax, %cr4
	mov $PHYS(boot_pml4), %eax
	mov %eax, %cr3
	mov $MSR_EFER, %ecx
	rdmsr
	or $0x101, %eax                 /* LME | SCE */
	wrmsr
	mov %cr0, %eax
	and $~0xc, %eax                 /* clear EM, TS */
	or $0x80010023, %eax            /* PG | WP | NE | MP | PE */
	mov %eax, %cr0
	lgdt PHYS(gdt_desc32)
	ljmp $KERNEL_CS, $start64_low

	.code64
start64_low:
	movabs $start64, %rax
	jmp *%rax

/* ---- 64-bit, higher half ---- */
	.text
start64:
	lgdt gdt_desc64(%rip)
	mov $KERNEL_DS, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	xor %eax, %eax
	mov %eax, %fs
	mov %eax, %gs
	lea kstack_top(%rip), %rsp
	movq $0, boot_pml4(%rip)        /* drop the identity map: lower half is the app's */
	mov %cr3, %rax
	mov %rax, %cr3
	fninit
	mov %esi, %edi
	call kmain
1:	jmp 1b

/* enter_user(rip, rsp): first entry into ring 3, all registers cleared */
	.globl enter_user
enter_user:
	pushq $USER_DS
	pushq %rsi
	pushq $0x2
	pushq $USER_CS
	pushq %rdi
	xor %eax, %eax
	xor %ebx, %ebx
	xor %ecx, %ecx
	xor %edx, %edx
	xor %esi, %esi
	xor %edi, %edi
	xor %ebp, %ebp
	xor %r8d, %r8d
	xor %r9d, %r9d
	xor %r10d, %r10d
	xor %r11d, %r11d
	xor %r12d, %r12d
	xor %r13d, %r13d
	xor %r14d, %r14d
	xor %r15d, %r15d
	mov %eax, %ds
	mov %eax, %es
	iretq

/* SYSCALL target. On hardware this runs in ring 0. On the CI platform SYSCALL
 * stays in ring 3 and fetching this supervisor page raises #PF (the `cli`
 * would raise #GP if it were reached) with RIP = syscall_entry; trap_handler
 * then runs the system call (trap.c). */
	.globl syscall_entry
	.p2align 4
syscall_entry:
	cli
	mov %rsp, user_rsp_scratch(%rip)
	lea kstack_top(%rip), %rsp
	pushq $USER_DS
	pushq user_rsp_scratch(%rip)
	pushq %r11
	pushq $USER_CS
	pushq %rcx
	pushq $0
	pushq $VEC_SYSCALL
	jmp trap_common

/* ---- exception stubs ---- */
.macro STUB vec, haserr
	.p2align 4
	.if \haserr == 0
	pushq $0
	.endif
	pushq $\vec
	jmp trap_common
.endm

	.p2align 4
	.globl trap_stubs
trap_stubs:
	STUB 0,0
	STUB 1,0
	STUB 2,0
	STUB 3,0
	STUB 4,0
	STUB 5,0
	STUB 6,0
	STUB 7,0
	STUB 8,1
	STUB 9,0
	STUB 10,1
	STUB 11,1
	STUB 12,1
	STUB 13,1
	STUB 14,1
	STUB 15,0
	STUB 16,0
	STUB 17,1
	STUB 18,0
	STUB 19,0
	STUB 20,0
	STUB 21,1
	STUB 22,0
	STUB 23,0
	STUB 24,0
	STUB 25,0
	STUB 26,0
	STUB 27,0
	STUB 28,0
	STUB 29,1
	STUB 30,1
	STUB 31,0

trap_common:
	pushq %rdi
	pushq %rsi
	pushq %rdx
	pushq %rcx
	pushq %rax
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %rbx
	pushq %rbp
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	cld
	mov %rsp, %rdi
	call trap_handler
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbp
	popq %rbx
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rax
	popq %rcx
	popq %rdx
	popq %rsi
	popq %rdi
	add $16, %rsp
	iretq

/* ---- data ---- */
	.data
	.p2align 4
	.globl gdt
gdt:
	.quad 0
	.quad 0x00cf9b000000ffff        /* 0x08 kernel code 32 */
	.quad 0x00af9b000000ffff        /* 0x10 kernel code 64 */
	.quad 0x00cf93000000ffff        /* 0x18 kernel data */
	.quad 0x00cffb000000ffff        /* 0x20 user code 32 (SYSRET base) */
	.quad 0x00cff3000000ffff        /* 0x28 user data */
	.quad 0x00affb000000ffff        /* 0x30 user code 64 */
	.quad 0
	.globl gdt_tss
gdt_tss:
	.quad 0                         /* 0x40 TSS, filled by trap_init */
	.quad 0
gdt_end:

	.p2align 3
gdt_desc32:
	.word gdt_end - gdt - 1
	.long PHYS(gdt)
	.p2align 3
	.word 0, 0, 0
gdt_desc64:
	.word gdt_end - gdt - 1
	.quad gdt

user_rsp_scratch:
	.quad 0

/* Boot page tables: one PD of 2 MiB pages covering physical 0-1 GiB, shared
 * by the identity map (boot only), the direct map and the kernel map. */
	.p2align 12
	.globl boot_pml4
boot_pml4:
	.quad PHYS(pdpt_low) + 3
	.fill 255, 8, 0
	.quad PHYS(pdpt_direct) + 3     /* 256: direct map at DIRECT_MAP */
	.fill 254, 8, 0
	.quad PHYS(pdpt_kernel) + 3     /* 511: kernel at KERNEL_VMA */
pdpt_low:
	.quad PHYS(pd_0) + 3
	.fill 511, 8, 0
	.globl pdpt_direct
pdpt_direct:
	.quad PHYS(pd_0) + 3
	.fill 511, 8, 0
pdpt_kernel:
	.fill 510, 8, 0
	.quad PHYS(pd_0) + 3
	.quad 0
pd_0:
	.set i, 0
	.rept 512
	.quad (i << 21) + 0x83
	.set i, i + 1
	.endr

	.bss
	.p2align 12
kstack:
	.skip 32768
	.globl kstack_top
kstack_top:
