/* AVX-512 build of pointwise_body.h. */
#include "kernels/isa_target.h"
LM_TARGET_BEGIN("avx512f,avx512bw,avx512vl,fma")
#define LM_VW 16
#define LM_SFX(name) name##_avx512
#include "kernels/pointwise_body.h"
LM_TARGET_END
