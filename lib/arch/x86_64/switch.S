/* SPDX-License-Identifier: MIT */
/*
 * Fiber context switch for x86-64 (System V ABI).
 *
 *   void urt__ctx_switch(void **save_sp, void *load_sp);
 *
 * Saves the callee-saved registers, MXCSR and the x87 control word on the
 * current stack, stores the stack pointer in *save_sp, loads load_sp and
 * restores the same set from there. Everything else is caller-saved, so
 * this is the whole cost of a switch: 6 pushes, 6 pops, 2 stores, a ret.
 *
 * A new fiber's stack is laid out by urt__ctx_init() (fiber.c) so that the
 * first switch to it "returns" into urt__ctx_entry with r12 = function and
 * r13 = argument.
 */
	.text
	.globl	urt__ctx_switch
	.hidden	urt__ctx_switch
	.type	urt__ctx_switch, @function
	.p2align 4
urt__ctx_switch:
	.cfi_startproc
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	subq	$8, %rsp
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movq	%rsp, (%rdi)
	movq	%rsi, %rsp
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	addq	$8, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
	.cfi_endproc
	.size	urt__ctx_switch, .-urt__ctx_switch

	.globl	urt__ctx_entry
	.hidden	urt__ctx_entry
	.type	urt__ctx_entry, @function
	.p2align 4
urt__ctx_entry:
	.cfi_startproc
	/* The outermost frame of a fiber: unwinders stop here. */
	.cfi_undefined rip
	movq	%r13, %rdi
	callq	*%r12
	ud2			/* the entry function never returns */
	.cfi_endproc
	.size	urt__ctx_entry, .-urt__ctx_entry

	.section .note.GNU-stack, "", @progbits
