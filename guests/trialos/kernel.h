/* trialos internal definitions. See main.c for an overview. */
#ifndef TRIALOS_KERNEL_H
#define TRIALOS_KERNEL_H

#define KERNEL_VMA   0xffffffff80000000
#define DIRECT_MAP   0xffff800000000000
#define KERNEL_PHYS  0x100000

/* GDT selectors (Linux layout, so SYSRET works and user CS/SS look familiar) */
#define KERNEL_CS    0x10
#define KERNEL_DS    0x18
#define USER_DS      0x2b
#define USER_CS      0x33
#define TSS_SEL      0x40

#define VEC_SYSCALL  256  /* pseudo vector for the native SYSCALL path */

#define MSR_EFER   0xc0000080
#define MSR_STAR   0xc0000081
#define MSR_LSTAR  0xc0000082
#define MSR_FMASK  0xc0000084
#define MSR_FS_BASE 0xc0000100
#define MSR_GS_BASE 0xc0000101
#define MSR_KGS_BASE 0xc0000102

#ifndef __ASSEMBLER__

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>
#include "../include/trialvm_abi.h"

typedef int64_t i64;
typedef uint64_t u64;
typedef uint32_t u32;
typedef uint16_t u16;
typedef uint8_t u8;

/* Built by the entry stubs in boot.S; same order as pushes there. */
struct trapframe {
	u64 r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8;
	u64 rax, rcx, rdx, rsi, rdi;
	u64 vector, err;
	u64 rip, cs, rflags, rsp, ss;
};

#define PAGE_SIZE 4096ul
#define PAGE_MASK (~(PAGE_SIZE - 1))
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((u64)(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((u64)(a) - 1))

#define PTE_P    (1ull << 0)
#define PTE_W    (1ull << 1)
#define PTE_U    (1ull << 2)
#define PTE_PS   (1ull << 7)
#define PTE_OWN  (1ull << 9)   /* software: frame allocated by us, freed on unmap */
#define PTE_NONE (1ull << 10)  /* software: PROT_NONE page kept (P clear) */
#define PTE_NX   (1ull << 63)
#define PTE_ADDR 0x000ffffffffff000ull

#define USER_TOP      0x00007ffffffff000ull
#define STACK_TOP     0x00007ffffffff000ull
#define STACK_EAGER   (256ul * 1024)
#define STACK_MAX     (8ul * 1024 * 1024)
#define MMAP_TOP      0x00007fff00000000ull
#define PIE_BIAS      0x0000555555554000ull

#define PROT_READ  1
#define PROT_WRITE 2
#define PROT_EXEC  4

enum { MAP_ANON_KIND = 0, MAP_ELF_KIND = 1, MAP_STACK_KIND = 2, MAP_BRK_KIND = 3 };

static inline void *phys_to_virt(u64 pa) { return (void *)(pa + DIRECT_MAP); }
u64 virt_to_phys(const void *va);

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port) : "memory"); }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port) : "memory"); }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u32 inl(u16 port) { u32 v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u64 rdmsr(u32 msr) { u32 lo, hi; __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr)); return ((u64)hi << 32) | lo; }
static inline void wrmsr(u32 msr, u64 v) { __asm__ volatile("wrmsr" ::"c"(msr), "a"((u32)v), "d"((u32)(v >> 32)) : "memory"); }
static inline void cpuid(u32 leaf, u32 sub, u32 *a, u32 *b, u32 *c, u32 *d)
{ __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(sub)); }
static inline u64 read_cr4(void) { u64 v; __asm__ volatile("mov %%cr4, %0" : "=r"(v)); return v; }
static inline void write_cr4(u64 v) { __asm__ volatile("mov %0, %%cr4" ::"r"(v) : "memory"); }
static inline void xsetbv(u32 idx, u64 v) { __asm__ volatile("xsetbv" ::"c"(idx), "a"((u32)v), "d"((u32)(v >> 32))); }
static inline u64 read_cr3(void) { u64 v; __asm__ volatile("mov %%cr3, %0" : "=r"(v)); return v; }
static inline void write_cr3(u64 v) { __asm__ volatile("mov %0, %%cr3" ::"r"(v) : "memory"); }
static inline u64 read_cr2(void) { u64 v; __asm__ volatile("mov %%cr2, %0" : "=r"(v)); return v; }


/* lib.c */
void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
void console_write(const void *buf, size_t n);
void kputs(const char *s);
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
size_t ksnprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void copy_page(void *dst, const void *src);
void zero_page(void *dst);

/* main.c */
extern bool under_trialvm;
extern bool have_nx;
extern const char *app_name;
extern u64 load_bias;
/* Where the initial stack put argv[] and the auxv (user virtual), for the
 * fault record. */
extern u64 user_argv_gva, user_argc, user_auxv_gva, user_auxv_len;
_Noreturn void poweroff(int status);
_Noreturn void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
i64 hcall(u32 op, u64 a0, u64 a1, u64 *out1, u64 *out2);
void fill_random(void *buf, size_t n);

/* mm.c */
struct vma { u64 start, end; u32 prot, kind; };
extern struct vma vmas[TVM_FAULT_MAX_MAPS];
extern unsigned nr_vmas;
extern u64 user_pml4_pa;
void mm_init(const struct hvm_start_info *si);
void mm_reserve(u64 start, u64 end);
u64 alloc_page(void);          /* zeroed frame */
u64 alloc_run(u64 want, u64 *got);
void map_frames(u64 va, u64 pa, u64 npages, u64 flags);
u64 *pte_get(u64 va, bool create);
void map_page(u64 va, u64 pa, u64 flags);
void unmap_range(u64 start, u64 end);
u64 prot_to_pte(u32 prot);
bool map_anon(u64 start, u64 end, u32 prot);
int vma_set(u64 start, u64 end, u32 prot, u32 kind);
void vma_clear(u64 start, u64 end);
struct vma *vma_find(u64 addr);
bool range_free(u64 start, u64 end);
bool user_ok(u64 addr, u64 len, bool write);
bool user_str_ok(u64 addr, size_t max, size_t *len);
u64 user_to_phys(u64 va);
void tlb_flush(void);
void tlb_flush_range(u64 start, u64 end);
bool stack_grow(u64 addr, u64 rsp);
extern u64 stack_low;
u64 mm_ram_end(void);
void *mmio_map(u64 pa);        /* uncached kernel mapping of device MMIO */

/* virtio.c: virtio-mmio devices (see virtio.h) */
void virtio_init(void);
int blk_find(const char *name);        /* "vda" -> index, or -1 */
u64 blk_bytes(int i);
bool blk_readonly(int i);
i64 blk_rw(int i, bool write, u64 ubuf, u64 len, u64 off);
i64 blk_flush(int i);
void blk_flush_all(void);
bool hvc_present(void);
i64 hvc_write(u64 ubuf, u64 len);
size_t virtio_rng_fill(void *buf, size_t n);

/* fs.c */
void fs_init(const u8 *archive, u64 size, u64 phys);
struct file_ent { const char *name; u32 namelen; u32 mode; const u8 *data; u64 size; u64 phys; u64 ino; u64 mtime; u32 nlink; };
int fs_lookup(const char *path, struct file_ent **out);
i64 sys_file(u64 nr, struct trapframe *tf, bool *handled);

/* elf.c */
struct app_image { u64 entry, phdr, phnum, phent, brk; bool exec_stack; };
void load_app(const u8 *img, u64 size, u64 phys, struct app_image *out);

/* syscall.c */
void do_syscall(struct trapframe *tf);
extern u64 brk_start, brk_cur;

/* trap.c */
void trap_init(void);
_Noreturn void user_crash(struct trapframe *tf, u32 vector, u32 signo, int code, u64 addr);
_Noreturn void enter_user(u64 rip, u64 rsp);
extern char syscall_entry[];

#endif /* __ASSEMBLER__ */
#endif
