/* AVX2 + FMA build of pointwise_body.h. */
#pragma GCC target("avx2,fma")
#define LM_VW 8
#define LM_SFX(name) name##_avx2
#include "kernels/pointwise_body.h"
