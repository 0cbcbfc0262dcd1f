/* Compiles the rest of a file for an instruction set, with GCC or clang:
 *
 *   #include "kernels/isa_target.h"
 *   LM_TARGET_BEGIN("avx512f,avx512bw,avx512vl,fma")
 *   ... the file ...
 *   LM_TARGET_END
 *
 * GCC's `#pragma GCC target` covers the rest of the file; clang has no such
 * pragma and gives every function between push and pop the target
 * attribute instead (the libFuzzer build uses clang). */
#ifndef LMKIT_KERNELS_ISA_TARGET_H
#define LMKIT_KERNELS_ISA_TARGET_H

#define LM_PRAGMA_(x) _Pragma(#x)
#if defined(__clang__)
#define LM_TARGET_BEGIN(isa) LM_PRAGMA_(clang attribute push(__attribute__((target(isa))), apply_to = function))
#define LM_TARGET_END LM_PRAGMA_(clang attribute pop)
#else
#define LM_TARGET_BEGIN(isa) LM_PRAGMA_(GCC target(isa))
#define LM_TARGET_END
#endif

#endif
