/* vmm/loader.c - kernel identification, ELF loading (libelf), PVH boot,
 * module placement. Linux specifics live in linux.c, the MP table in mptable.c,
 * the ACPI tables in acpi.c. */
#include "loader_int.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../guests/include/trialvm_abi.h"
#include "acpi.h"
#include "fileio.h"
#include "util.h"

#define KERNEL_MAX_FILE (1ull << 30)

/* ---------------------------------------------------------------- ranges */

void ldr_busy_add(struct ldr_busy *b, uint64_t start, uint64_t end)
{
	if (b->n < LDR_MAX_BUSY && end > start) {
		b->r[b->n].start = start;
		b->r[b->n].end = end;
		b->n++;
	}
}

/* Everything the loader writes below 1 MiB (see loader.h). */
static const struct { uint64_t start, end; } boot_data[] = {
	{ 0, 0x1000 },  /* IVT/BDA and the core's boot GDT (TVM_BOOT_GDT 0x500) */
	{ TVM_PVH_START_INFO, TVM_PVH_CMDLINE + TVM_CMDLINE_MAX },
	{ LOADER_BOOT_PARAMS, LOADER_BOOT_PARAMS + 0x1000 },
	{ LOADER_LINUX_CMDLINE, LOADER_LINUX_CMDLINE + 0x1000 },
	{ LOADER_MPTABLE, 0xa0000 },
	{ TVM_ACPI_START, TVM_ACPI_END },
	{ LOADER_MPTABLE_ALT, LOADER_MPTABLE_ALT + 0x1000 },
	{ LOADER_CORE_FREE_START, LOADER_CORE_FREE_END },
};

bool ldr_overlaps_boot_data(uint64_t start, uint64_t end)
{
	for (size_t i = 0; i < sizeof(boot_data) / sizeof(boot_data[0]); i++)
		if (start < boot_data[i].end && boot_data[i].start < end)
			return true;
	return false;
}

uint64_t ldr_low_ram_end(struct vm *vm)
{
	const struct mem_region *r;
	int n = vm_regions(vm, &r);
	for (int i = 0; i < n; i++)
		if (r[i].gpa == 0)
			return r[i].size;
	return 0;
}

void ldr_describe_ram(struct vm *vm, char *buf, size_t len)
{
	const struct mem_region *r;
	int n = vm_regions(vm, &r);
	int off = snprintf(buf, len, "%llu MiB of RAM at", (unsigned long long)(vm_ram_size(vm) >> 20));
	for (int i = 0; i < n && off >= 0 && (size_t)off < len; i++)
		off += snprintf(buf + off, len - (size_t)off, "%s 0x%llx-0x%llx", i ? "," : "",
				(unsigned long long)r[i].gpa, (unsigned long long)(r[i].gpa + r[i].size));
}

static bool place_in(uint64_t rs, uint64_t re, uint64_t size, const struct ldr_busy *b, uint64_t *out)
{
	uint64_t top = re;
	for (;;) {
		if (top < rs || top - rs < size)
			return false;
		uint64_t start = (top - size) & ~(LDR_PAGE - 1);
		if (start < rs)
			return false;
		bool moved = false;
		for (int i = 0; b && i < b->n; i++) {
			if (start < b->r[i].end && b->r[i].start < start + size) {
				top = b->r[i].start; /* strictly below the old top: terminates */
				moved = true;
				break;
			}
		}
		if (!moved) {
			*out = start;
			return true;
		}
	}
}

int ldr_place_high(struct vm *vm, uint64_t size, uint64_t min_addr, uint64_t limit,
		   const struct ldr_busy *b, uint64_t *out)
{
	struct e820_entry e[128];
	int n = vm_e820(vm, e, 128);
	bool found = false;
	uint64_t best = 0;
	if (size == 0)
		return -1;
	for (int i = 0; i < n; i++) {
		uint64_t end;
		if (e[i].type != TVM_E820_RAM || __builtin_add_overflow(e[i].addr, e[i].size, &end))
			continue;
		uint64_t rs = e[i].addr > min_addr ? e[i].addr : min_addr;
		uint64_t re = end < limit ? end : limit;
		uint64_t at;
		if (re > rs && place_in(rs, re, size, b, &at) && (!found || at > best)) {
			best = at;
			found = true;
		}
	}
	if (!found)
		return -1;
	*out = best;
	return 0;
}

/* ---------------------------------------------------------------- files */

static int open_sized(const char *role, const char *opt, const char *path, uint64_t max,
		      int *fdp, uint64_t *sizep, struct tvm_err *err)
{
	struct stat st;
	int fd = open_input(path, &st);
	if (fd < 0)
		return tvm_seterr(err, "%s '%s': cannot open it (%s); check the path given to %s",
				  role, path, strerror(errno), opt);
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return tvm_seterr(err, "%s '%s' is not a regular file; give %s a file", role, path, opt);
	}
	if (st.st_size == 0) {
		close(fd);
		return tvm_seterr(err, "%s '%s' is empty (0 bytes); check that it was built or downloaded completely",
				  role, path);
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return tvm_seterr(err, "%s '%s' is too large (%llu bytes, the limit is %llu); give the VM more memory with --mem or use a smaller file",
				  role, path, (unsigned long long)st.st_size, (unsigned long long)max);
	}
	*fdp = fd;
	*sizep = (uint64_t)st.st_size;
	return 0;
}

static int read_all(int fd, uint8_t *buf, uint64_t n, const char *role, const char *path, struct tvm_err *err)
{
	int rc = n > SIZE_MAX ? -EFBIG : pread_all(fd, buf, (size_t)n, 0);
	if (rc == -ENODATA)
		return tvm_seterr(err, "%s '%s' shrank while it was being read; do not modify it while trialvm starts",
				  role, path);
	if (rc < 0)
		return tvm_seterr(err, "%s '%s': read failed (%s)", role, path, strerror(-rc));
	return 0;
}

static int read_kernel_file(const char *path, uint8_t **data, size_t *len, struct tvm_err *err)
{
	int fd;
	uint64_t size;
	if (open_sized("kernel", "--kernel", path, KERNEL_MAX_FILE, &fd, &size, err) < 0)
		return -1;
	uint8_t *buf = malloc(size);
	if (!buf) {
		close(fd);
		return tvm_seterr(err, "kernel '%s': out of memory for %llu bytes", path, (unsigned long long)size);
	}
	if (read_all(fd, buf, size, "kernel", path, err) < 0) {
		free(buf);
		close(fd);
		return -1;
	}
	close(fd);
	*data = buf;
	*len = size;
	return 0;
}

int ldr_load_module(struct vm *vm, const char *role, const char *opt, const char *path,
		    uint64_t min_addr, uint64_t limit, struct ldr_busy *busy,
		    uint64_t *gpa, uint64_t *size, struct tvm_err *err)
{
	int fd;
	uint64_t n, at;
	if (open_sized(role, opt, path, vm_ram_size(vm), &fd, &n, err) < 0)
		return -1;
	if (ldr_place_high(vm, n, min_addr, limit, busy, &at) < 0) {
		char ram[160];
		close(fd);
		ldr_describe_ram(vm, ram, sizeof(ram));
		return tvm_seterr(err, "%s '%s' (%llu bytes) does not fit in free guest RAM between 0x%llx and 0x%llx next to the kernel (%s); give the VM more memory with --mem",
				  role, path, (unsigned long long)n, (unsigned long long)min_addr,
				  (unsigned long long)limit, ram);
	}
	uint8_t *host = gpa_ptr(vm, GPA(at), n);
	if (!host) {
		close(fd);
		return tvm_seterr(err, "%s '%s': internal error: placement 0x%llx is not RAM", role, path,
				  (unsigned long long)at);
	}
	int rc = read_all(fd, host, n, role, path, err);
	close(fd);
	if (rc < 0)
		return -1;
	ldr_busy_add(busy, at, (at + n + LDR_PAGE - 1) & ~(LDR_PAGE - 1));
	*gpa = at;
	*size = n;
	return 0;
}

/* ---------------------------------------------------------------- ELF */

static bool name_is(const Elf_Data *d, const GElf_Nhdr *nh, size_t name_off, const char *want)
{
	size_t wl = strlen(want) + 1;
	if (nh->n_namesz != wl || name_off > d->d_size || d->d_size - name_off < wl)
		return false;
	return memcmp((const char *)d->d_buf + name_off, want, wl) == 0;
}

static void scan_notes(Elf_Data *d, struct ldr_elf *info, bool *bad_pvh)
{
	size_t off = 0, name_off, desc_off;
	GElf_Nhdr nh;
	while (d && d->d_buf && off < d->d_size) {
		size_t next = gelf_getnote(d, off, &nh, &name_off, &desc_off);
		if (next == 0 || next <= off)
			break;
		if (name_is(d, &nh, name_off, "Linux")) {
			info->is_linux = true;
		} else if (name_is(d, &nh, name_off, "Xen") && nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY) {
			const uint8_t *p = (const uint8_t *)d->d_buf + desc_off;
			if (desc_off <= d->d_size && d->d_size - desc_off >= nh.n_descsz && nh.n_descsz == 4) {
				info->has_pvh = true;
				info->pvh_entry = ldr_le32(p);
			} else if (desc_off <= d->d_size && d->d_size - desc_off >= nh.n_descsz && nh.n_descsz == 8) {
				info->has_pvh = true;
				info->pvh_entry = ldr_le64(p);
			} else {
				*bad_pvh = true;
			}
		}
		off = next;
	}
}

static const char *ptype(uint32_t t)
{
	return t == PT_LOAD ? "PT_LOAD" : t == PT_NOTE ? "PT_NOTE" : "segment";
}

int ldr_elf_load(struct vm *vm, const char *what, const uint8_t *img, size_t len,
		 struct ldr_elf *info, struct tvm_err *err)
{
	memset(info, 0, sizeof(*info));
	if (len < sizeof(Elf64_Ehdr))
		return tvm_seterr(err, "%s is truncated: %zu bytes is less than an ELF64 header; re-copy or rebuild it",
				  what, len);
	if (memcmp(img, ELFMAG, SELFMAG) != 0)
		return tvm_seterr(err, "%s is not an ELF file", what);
	if (img[EI_CLASS] != ELFCLASS64)
		return tvm_seterr(err, "%s is a 32-bit (or unknown class) ELF; trialvm boots ELF64 x86-64 kernels only", what);
	if (img[EI_DATA] != ELFDATA2LSB)
		return tvm_seterr(err, "%s is a big-endian ELF; trialvm boots little-endian x86-64 kernels only", what);
	if (img[EI_VERSION] != EV_CURRENT)
		return tvm_seterr(err, "%s has an unknown ELF version %u; the file is corrupt", what, img[EI_VERSION]);

	if (elf_version(EV_CURRENT) == EV_NONE)
		return tvm_seterr(err, "libelf is unusable: %s", elf_errmsg(-1));
	/* elf_memory does not write to a native-endian image (checked above). */
	Elf *e = elf_memory((char *)(uintptr_t)img, len);
	if (!e)
		return tvm_seterr(err, "%s: libelf cannot read it (%s); the file is corrupt", what, elf_errmsg(-1));
	int rc = -1;
	GElf_Ehdr eh;
	if (elf_kind(e) != ELF_K_ELF || !gelf_getehdr(e, &eh)) {
		tvm_seterr(err, "%s has a corrupt ELF header (%s)", what, elf_errmsg(-1));
		goto out;
	}
	if (eh.e_machine != EM_X86_64) {
		tvm_seterr(err, "%s is an ELF for machine %u, not x86-64 (62); use a kernel built for x86-64",
			   what, eh.e_machine);
		goto out;
	}
	if (eh.e_type != ET_EXEC) {
		tvm_seterr(err, "%s is not an ELF executable (e_type %u%s); pass the linked kernel image",
			   what, eh.e_type, eh.e_type == ET_REL ? ", an object file" : eh.e_type == ET_DYN ? ", position-independent" : "");
		goto out;
	}
	size_t phnum;
	if (elf_getphdrnum(e, &phnum) != 0 || phnum == 0) {
		tvm_seterr(err, "%s has no usable program headers (%s); it is truncated or not a loadable kernel",
			   what, phnum ? elf_errmsg(-1) : "none");
		goto out;
	}
	uint64_t phend;
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || phnum > 65535 ||
	    __builtin_add_overflow(eh.e_phoff, (uint64_t)phnum * sizeof(Elf64_Phdr), &phend) || phend > len) {
		tvm_seterr(err, "%s is truncated or corrupt: its program header table (offset 0x%llx, %zu entries of %u bytes) extends past the end of the file (%zu bytes)",
			   what, (unsigned long long)eh.e_phoff, phnum, eh.e_phentsize, len);
		goto out;
	}

	/* Pass 1: validate every segment and read the notes. */
	bool bad_pvh = false, any_load = false, any_note_phdr = false;
	info->lo = UINT64_MAX;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(e, (int)i, &ph)) {
			tvm_seterr(err, "%s: program header %zu is unreadable (%s)", what, i, elf_errmsg(-1));
			goto out;
		}
		if (ph.p_type != PT_LOAD && ph.p_type != PT_NOTE)
			continue;
		uint64_t fend, mend;
		if (__builtin_add_overflow(ph.p_offset, ph.p_filesz, &fend) || fend > len) {
			tvm_seterr(err, "%s is truncated: %s %zu (file offset 0x%llx, 0x%llx bytes) extends past the end of the file (%zu bytes); re-copy or rebuild it",
				   what, ptype(ph.p_type), i, (unsigned long long)ph.p_offset,
				   (unsigned long long)ph.p_filesz, len);
			goto out;
		}
		if (ph.p_type == PT_NOTE) {
			any_note_phdr = true;
			if (ph.p_filesz == 0)
				continue;
			Elf_Data *d = elf_getdata_rawchunk(e, (int64_t)ph.p_offset, ph.p_filesz,
							   ph.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR);
			scan_notes(d, info, &bad_pvh);
			continue;
		}
		if (ph.p_memsz == 0)
			continue;
		if (ph.p_filesz > ph.p_memsz) {
			tvm_seterr(err, "%s is corrupt: PT_LOAD %zu has more file bytes (0x%llx) than memory bytes (0x%llx)",
				   what, i, (unsigned long long)ph.p_filesz, (unsigned long long)ph.p_memsz);
			goto out;
		}
		if (__builtin_add_overflow(ph.p_paddr, ph.p_memsz, &mend) || !gpa_ptr(vm, GPA(ph.p_paddr), ph.p_memsz)) {
			char ram[160];
			ldr_describe_ram(vm, ram, sizeof(ram));
			bool hole = ph.p_paddr < TVM_4G && ph.p_paddr + ph.p_memsz > TVM_MMIO_HOLE_START &&
				    ph.p_paddr + ph.p_memsz >= ph.p_paddr;
			tvm_seterr(err, "%s: PT_LOAD segment %zu (guest-physical 0x%llx-0x%llx) lies outside guest RAM (%s); %s",
				   what, i, (unsigned long long)ph.p_paddr,
				   (unsigned long long)(ph.p_paddr + ph.p_memsz), ram,
				   hole ? "it overlaps the MMIO hole at 0xc0000000-0x100000000, so the kernel must be linked elsewhere"
					: "give the VM more memory with --mem");
			goto out;
		}
		if (ldr_overlaps_boot_data(ph.p_paddr, mend)) {
			tvm_seterr(err, "%s: PT_LOAD segment %zu (guest-physical 0x%llx-0x%llx) overlaps trialvm's boot data below 1 MiB (0x0-0x1000, 0x5000-0x21000, 0x9fc00-0xa0000, 0xe0000-0xf1000); link the kernel at or above 1 MiB",
				   what, i, (unsigned long long)ph.p_paddr, (unsigned long long)mend);
			goto out;
		}
		any_load = true;
		if (ph.p_paddr < info->lo)
			info->lo = ph.p_paddr;
		if (mend > info->hi)
			info->hi = mend;
	}
	if (!any_load) {
		tvm_seterr(err, "%s has no PT_LOAD segment with contents; it is not a loadable kernel", what);
		goto out;
	}

	/* Sections: notes (when there were no PT_NOTE) and Linux's layout. */
	size_t shstrndx = 0;
	bool have_strtab = elf_getshdrstrndx(e, &shstrndx) == 0;
	for (Elf_Scn *s = elf_nextscn(e, NULL); s; s = elf_nextscn(e, s)) {
		GElf_Shdr sh;
		if (!gelf_getshdr(s, &sh))
			break;
		if (have_strtab) {
			const char *nm = elf_strptr(e, shstrndx, sh.sh_name);
			if (nm && (strcmp(nm, ".head.text") == 0 || strcmp(nm, "__ksymtab_strings") == 0))
				info->is_linux = true;
		}
		uint64_t send;
		if (sh.sh_type == SHT_NOTE && !any_note_phdr &&
		    !__builtin_add_overflow(sh.sh_offset, sh.sh_size, &send) && send <= len)
			scan_notes(elf_getdata(s, NULL), info, &bad_pvh);
	}
	elf_errno(); /* clear errors from tolerated section problems */

	if (bad_pvh && !info->has_pvh && !info->is_linux) {
		tvm_seterr(err, "%s: its PVH entry note (Xen, type 18) has a descriptor that is neither 4 nor 8 bytes; fix the note in the kernel's linker script",
			   what);
		goto out;
	}

	/* The entry in physical terms: e_entry is physical for PVH kernels and
	 * Linux's vmlinux (phys_startup_64); translate a virtual one. */
	info->entry = eh.e_entry;
	bool entry_ok = false;
	for (int virt = 0; virt < 2 && !entry_ok; virt++) { /* physical match first */
		for (size_t i = 0; i < phnum && !entry_ok; i++) {
			GElf_Phdr ph;
			if (!gelf_getphdr(e, (int)i, &ph) || ph.p_type != PT_LOAD || ph.p_memsz == 0)
				continue;
			uint64_t base = virt ? ph.p_vaddr : ph.p_paddr;
			if (eh.e_entry >= base && eh.e_entry - base < ph.p_memsz) {
				info->entry = eh.e_entry - base + ph.p_paddr;
				entry_ok = true;
			}
		}
	}
	if (!info->has_pvh && !entry_ok) {
		tvm_seterr(err, "%s: its entry point 0x%llx is not inside any PT_LOAD segment; the file is corrupt",
			   what, (unsigned long long)eh.e_entry);
		goto out;
	}

	/* Pass 2: copy. */
	for (size_t i = 0; vm && i < phnum; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(e, (int)i, &ph) || ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		uint8_t *dst = gpa_ptr(vm, GPA(ph.p_paddr), ph.p_memsz);
		if (!dst) { /* validated above */
			tvm_seterr(err, "%s: internal error placing segment %zu", what, i);
			goto out;
		}
		memcpy(dst, img + ph.p_offset, ph.p_filesz);
		memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
		if (info->nsegs < TVM_MAX_KSEGS)
			info->segs[info->nsegs++] = (struct kernel_seg){ ph.p_vaddr, ph.p_paddr, ph.p_memsz };
	}
	rc = 0;
out:
	elf_end(e);
	return rc;
}

/* ---------------------------------------------------------------- PVH */

static int pvh_boot(struct vm *vm, const struct load_opts *o, const struct ldr_elf *ke,
		    struct boot_entry *entry, struct tvm_err *err)
{
	const char *cmd = o->cmdline ? o->cmdline : "";
	size_t clen = strlen(cmd);
	if (clen > TVM_CMDLINE_MAX - 1)
		return tvm_seterr(err, "the command line is %zu bytes; PVH kernels take at most %u; shorten --cmdline",
				  clen, TVM_CMDLINE_MAX - 1);
	if (ke->pvh_entry >= TVM_4G || !gpa_ptr(vm, GPA(ke->pvh_entry), 1))
		return tvm_seterr(err, "kernel '%s': its PVH entry 0x%llx is not in guest RAM below 4 GiB; the PVH note is wrong",
				  o->kernel, (unsigned long long)ke->pvh_entry);

	struct ldr_busy busy = { 0 };
	ldr_busy_add(&busy, ke->lo & ~(LDR_PAGE - 1), ke->hi);
	uint64_t limit = ldr_low_ram_end(vm);
	if (limit > TVM_4G)
		limit = TVM_4G;

	struct hvm_modlist_entry mods[2];
	memset(mods, 0, sizeof(mods));
	uint32_t nmods = 0;
	if (o->initrd) {
		if (ldr_load_module(vm, "initrd", "--initrd", o->initrd, LDR_MIB, limit, &busy,
				    &mods[0].paddr, &mods[0].size, err) < 0)
			return -1;
		nmods = 1;
	}
	if (o->cpio) {
		if (!o->initrd)
			return tvm_seterr(err, "--cpio '%s' is module 1 and needs module 0: give the application ELF with --initrd too",
					  o->cpio);
		if (ldr_load_module(vm, "cpio", "--cpio", o->cpio, LDR_MIB, limit, &busy,
				    &mods[1].paddr, &mods[1].size, err) < 0)
			return -1;
		nmods = 2;
	}

	struct e820_entry e[64];
	int ne = vm_e820(vm, e, 64);
	if (ne <= 0)
		return tvm_seterr(err, "internal error: the VM has no e820 map");
	struct hvm_memmap_table_entry mm[64];
	memset(mm, 0, sizeof(mm));
	for (int i = 0; i < ne; i++) {
		mm[i].addr = e[i].addr;
		mm[i].size = e[i].size;
		mm[i].type = e[i].type;
	}

	struct hvm_start_info si;
	memset(&si, 0, sizeof(si));
	si.magic = XEN_HVM_START_MAGIC_VALUE;
	si.version = 1;
	si.nr_modules = nmods;
	si.modlist_paddr = nmods ? TVM_PVH_MODLIST : 0;
	si.cmdline_paddr = TVM_PVH_CMDLINE;
	si.memmap_paddr = TVM_PVH_MEMMAP;
	si.memmap_entries = (uint32_t)ne;

	if (gpa_write(vm, GPA(TVM_PVH_CMDLINE), cmd, clen + 1) < 0 ||
	    gpa_write(vm, GPA(TVM_PVH_MEMMAP), mm, sizeof(mm[0]) * (size_t)ne) < 0 ||
	    (nmods && gpa_write(vm, GPA(TVM_PVH_MODLIST), mods, sizeof(mods[0]) * nmods) < 0) ||
	    gpa_write(vm, GPA(TVM_PVH_START_INFO), &si, sizeof(si)) < 0)
		return tvm_seterr(err, "guest RAM is too small for the PVH boot data at 0x5000-0x7000");

	entry->mode = BOOT_PVH32;
	entry->rip = ke->pvh_entry;
	entry->arg = TVM_PVH_START_INFO;
	return 0;
}

/* ---------------------------------------------------------------- platform tables */

/* boot_params.acpi_rsdp_addr (u64), boot protocol 2.14 and later. */
#define BP_ACPI_RSDP_ADDR 0x070
#define BP_VERSION 0x206

/* ACPI tables for every boot (Linux finds them through boot_params, PVH
 * kernels through hvm_start_info.rsdp_paddr, others by scanning
 * 0xe0000-0xfffff), and the MP table when there is more than one vCPU. */
static int platform_tables(struct vm *vm, const struct load_opts *o, bool is_linux, struct tvm_err *err)
{
	int ncpus = vm_ncpus(vm);
	uint64_t rsdp;
	if (acpi_write(vm, ncpus, o->virtio, o->nvirtio, &rsdp, err) < 0)
		return -1;
	if (is_linux) {
		uint8_t ver[2];
		if (gpa_read(vm, GPA(LOADER_BOOT_PARAMS + BP_VERSION), ver, sizeof(ver)) < 0)
			return tvm_seterr(err, "internal error: boot_params are not in guest RAM");
		if (ldr_le16(ver) >= 0x20e &&
		    gpa_write(vm, GPA(LOADER_BOOT_PARAMS + BP_ACPI_RSDP_ADDR), &rsdp, sizeof(rsdp)) < 0)
			return tvm_seterr(err, "internal error: boot_params are not in guest RAM");
	} else if (gpa_write(vm, GPA(TVM_PVH_START_INFO + offsetof(struct hvm_start_info, rsdp_paddr)), &rsdp,
			     sizeof(rsdp)) < 0) {
		return tvm_seterr(err, "internal error: the PVH start info is not in guest RAM");
	}
	if (ncpus > 1)
		return mptable_write(vm, ncpus, err);
	return 0;
}

/* ---------------------------------------------------------------- entry */

int load_kernel(struct vm *vm, const struct load_opts *o, struct boot_entry *entry, struct tvm_err *err)
{
	if (!o || !o->kernel)
		return tvm_seterr(err, "no kernel given; pass one with --kernel");
	entry->nsegs = 0;
	uint8_t *img = NULL;
	size_t len = 0;
	if (read_kernel_file(o->kernel, &img, &len, err) < 0)
		return -1;

	int rc = -1;
	bool is_linux = true;
	char what[600];
	snprintf(what, sizeof(what), "kernel '%s'", o->kernel);

	if (len >= SELFMAG && memcmp(img, ELFMAG, SELFMAG) == 0) {
		struct ldr_elf ke;
		if (ldr_elf_load(vm, what, img, len, &ke, err) < 0)
			goto out;
		entry->nsegs = ke.nsegs;
		memcpy(entry->segs, ke.segs, sizeof(entry->segs));
		if (ke.is_linux) {
			rc = linux_boot_vmlinux(vm, o, &ke, entry, err);
		} else if (ke.has_pvh) {
			is_linux = false;
			rc = pvh_boot(vm, o, &ke, entry, err);
		} else {
			tvm_seterr(err, "kernel '%s' is an ELF without a PVH entry note (name \"Xen\", type 18) and is not a Linux vmlinux, so trialvm cannot tell how to enter it; add a PVH note or pass a Linux kernel",
				   o->kernel);
			goto out;
		}
	} else if (linux_is_bzimage(img, len)) {
		rc = linux_boot_bzimage(vm, o, img, len, entry, err);
	} else if (len < 0x264) {
		tvm_seterr(err, "kernel '%s' is only %zu bytes: too short for an ELF kernel or a bzImage (truncated?); pass a complete vmlinux, PVH ELF or bzImage",
			   o->kernel, len);
		goto out;
	} else {
		tvm_seterr(err, "kernel '%s' is neither an ELF executable nor a Linux bzImage (no ELF magic, no \"HdrS\" at 0x202; it starts with %02x %02x %02x %02x); pass a vmlinux, PVH ELF or bzImage",
			   o->kernel, img[0], img[1], img[2], img[3]);
		goto out;
	}
	if (rc == 0)
		rc = platform_tables(vm, o, is_linux, err);
out:
	free(img);
	return rc;
}
