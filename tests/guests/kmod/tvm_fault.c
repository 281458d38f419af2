// SPDX-License-Identifier: GPL-2.0
/* tests/guests/kmod/tvm_fault.c - the vendor's buggy driver of the Linux
 * image tests: a kernel module whose /proc/tvm_fault makes the kernel fail
 * on demand, as a real driver bug would (Debian's kernel has no lkdtm):
 *
 *   echo oops > /proc/tvm_fault        a NULL write in kernel mode: an oops
 *                                      (oops=panic makes it a panic)
 *   echo softlockup > /proc/tvm_fault  spin with preemption off: the soft
 *                                      lockup detector fires (softlockup_panic)
 *   echo hardlockup > /proc/tvm_fault  spin with interrupts off: nothing in
 *                                      the guest can see it (no NMI watchdog
 *                                      in a VM without a PMU); trialvm's
 *                                      hang watch does
 *
 * Built against Debian's headers by tests/run.sh (images/fetch-debian-kernel.sh
 * --headers), loaded by crash-test. */
#include <linux/init.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/preempt.h>
#include <linux/proc_fs.h>
#include <linux/string.h>
#include <linux/uaccess.h>

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("trialvm tests: kernel failures on demand");

static int *volatile tvm_null_pointer;

static noinline void tvm_fault_oops(void)
{
	*tvm_null_pointer = 1;
}

static noinline void tvm_fault_softlockup(void)
{
	preempt_disable();
	for (;;)
		cpu_relax();
}

static noinline void tvm_fault_hardlockup(void)
{
	local_irq_disable();
	for (;;)
		cpu_relax();
}

static ssize_t tvm_fault_write(struct file *f, const char __user *buf, size_t len, loff_t *pos)
{
	char cmd[16];

	if (len == 0 || len >= sizeof(cmd))
		return -EINVAL;
	if (copy_from_user(cmd, buf, len))
		return -EFAULT;
	cmd[len] = 0;
	pr_info("tvm_fault: %s\n", strim(cmd));
	if (sysfs_streq(cmd, "oops"))
		tvm_fault_oops();
	else if (sysfs_streq(cmd, "softlockup"))
		tvm_fault_softlockup();
	else if (sysfs_streq(cmd, "hardlockup"))
		tvm_fault_hardlockup();
	else
		return -EINVAL;
	return len;
}

static const struct proc_ops tvm_fault_ops = {
	.proc_write = tvm_fault_write,
};

static int __init tvm_fault_init(void)
{
	return proc_create("tvm_fault", 0200, NULL, &tvm_fault_ops) ? 0 : -ENOMEM;
}

static void __exit tvm_fault_exit(void)
{
	remove_proc_entry("tvm_fault", NULL);
}

module_init(tvm_fault_init);
module_exit(tvm_fault_exit);
