/* SPDX-License-Identifier: MIT */
/*
 * Fiber context switch for x86-64 (System V ABI).
 *
 *   void urt__ctx_switch(void **save_sp, void *load_sp);
 *
 * Saves the callee-saved registers, MXCSR and the x87 control word on the
 * current stack, stores the stack pointer in *save_sp, loads load_sp and
 * restores the same set from there. Everything else is caller-saved, so
 * this is the whole cost of a switch: 7 pushes, 6 pops, 2 stores, a ret
(plus ldmxcsr/fldcw when the two contexts' control words differ).
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
	pushq	$0			/* bytes 6-7 stay zero: compared below */
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movq	%rsp, (%rdi)
	movq	(%rsp), %rax
	movq	%rsi, %rsp
	/*
	 * ldmxcsr and fldcw serialize and cost more than the rest of the
	 * switch; nearly every context runs with the same control words, so
	 * load them only when the control bits differ (MXCSR's status bits,
	 * 0-5, are caller-saved in the ABI and need not follow the context).
	 */
	xorq	(%rsp), %rax
	movabsq	$0x0000ffff0000ffc0, %rdx
	testq	%rdx, %rax
	jnz	2f
1:	addq	$8, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
2:	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	jmp	1b
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
