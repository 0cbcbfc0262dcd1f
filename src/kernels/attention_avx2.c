/* AVX2 + FMA build of attention_body.h. */
#include "kernels/isa_target.h"
LM_TARGET_BEGIN("avx2,fma")
#define LM_VW 8
#define LM_SFX(name) name##_avx2
#include "kernels/attention_body.h"
LM_TARGET_END
