/* Quantized types: metadata, run-time kernel dispatch, whole-tensor
 * conversion, and the matmul used by inference.
 *
 * Why two matmul strategies: decoding multiplies each weight row with one
 * (or a few) activation rows, so it is bound by reading the weights and
 * the integer dot kernels read the fewest bytes. Prefill multiplies with
 * hundreds of rows; there dequantizing a tile of W to F32 once and handing
 * it to SGEMM amortizes the conversion and runs at GEMM speed. */
#include <ctype.h>
#include <string.h>

#include "kernels/quant_blocks.h"
#include "lmkit/kernels.h"

/* Batch size from which lm_qmatmul switches to dequantize + SGEMM. */
#define LM_QMATMUL_GEMM_MIN_N 16
/* Q8_0, Q4_0 and Q4_K with their batched decode kernels (four weight
 * rows times up to four activation rows, each row unpacked once) stay on
 * the decode path up to this many activation rows: there it is faster
 * than the GEMM (1B, 16 sequences a step: Q4_0 112 against 81 tokens/s,
 * Q4_K 103 against 70; Q8_0 at 8 sequences already 80 against 73 at 16
 * through the GEMM). */
#define LM_QMATMUL_BATCHED_GEMM_MIN_N 32
/* Floats of dequantized weights per SGEMM tile (8 MiB). */
#define LM_QMATMUL_TILE_FLOATS (2u << 20)
/* Multiply-adds below which a matmul stays on one thread: waking a team
 * costs more than it saves, and badly so on a loaded machine where
 * spinning workers fight for the cores. */
#define LM_PARALLEL_MIN_WORK (1 << 18)

typedef struct {
    lm_qtype t;
    const char *name;
    int block_elems;
    size_t block_bytes;
} qtype_info;

static const qtype_info infos[] = {
    {LM_QT_F32, "f32", 1, 4},
    {LM_QT_F16, "f16", 1, 2},
    {LM_QT_BF16, "bf16", 1, 2},
    {LM_QT_Q8_0, "q8_0", QK8_0, sizeof(lm_block_q8_0)},
    {LM_QT_Q4_0, "q4_0", QK4_0, sizeof(lm_block_q4_0)},
    {LM_QT_Q4_K, "q4_k", QK_K, sizeof(lm_block_q4_k)},
    {LM_QT_Q6_K, "q6_k", QK_K, sizeof(lm_block_q6_k)},
    {LM_QT_Q8_K, "q8_k", QK_K, sizeof(lm_block_q8_k)},
};

static const qtype_info *info_of(int t) {
    for (size_t i = 0; i < sizeof infos / sizeof infos[0]; i++)
        if ((int)infos[i].t == t) return &infos[i];
    return NULL;
}

int lm_qtype_valid(int t) { return info_of(t) != NULL; }
const char *lm_qtype_name(lm_qtype t) {
    const qtype_info *i = info_of(t);
    return i ? i->name : "unknown";
}
int lm_qtype_block_elems(lm_qtype t) {
    const qtype_info *i = info_of(t);
    return i ? i->block_elems : 0;
}
size_t lm_qtype_block_bytes(lm_qtype t) {
    const qtype_info *i = info_of(t);
    return i ? i->block_bytes : 0;
}
size_t lm_qtype_row_bytes(lm_qtype t, int64_t k) {
    const qtype_info *i = info_of(t);
    return i ? (size_t)(k / i->block_elems) * i->block_bytes : 0;
}

lm_status lm_qtype_from_name(const char *name, lm_qtype *out) {
    char low[16];
    size_t n = strlen(name);
    if (n >= sizeof low) return lm_error(LM_ERR_ARG, "unknown tensor type '%s'", name);
    for (size_t i = 0; i <= n; i++) low[i] = (char)tolower((unsigned char)name[i]);
    for (size_t i = 0; i < sizeof infos / sizeof infos[0]; i++)
        if (!strcmp(infos[i].name, low)) {
            *out = infos[i].t;
            return LM_OK;
        }
    return lm_error(LM_ERR_ARG, "unknown tensor type '%s' (expected f32, f16, bf16, q8_0, q4_0, q4_k, q6_k)",
                    name);
}

lm_qtype lm_qtype_vec_type(lm_qtype t) {
    switch (t) {
    case LM_QT_Q8_0:
    case LM_QT_Q4_0: return LM_QT_Q8_0;
    case LM_QT_Q4_K:
    case LM_QT_Q6_K: return LM_QT_Q8_K;
    default: return LM_QT_F32;
    }
}

/* ---------------- dispatch ---------------- */

static lm_isa requested_isa = LM_ISA_BEST;

static lm_isa hardware_isa(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni"))
            cached = LM_ISA_AVX512;
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            cached = LM_ISA_AVX2;
        else
            cached = LM_ISA_SCALAR;
    }
    return (lm_isa)cached;
}

/* The Q4_0 / Q4_K / Q6_K multi-row kernels also need AVX512-VBMI (byte
 * permutes, multishift) and GFNI (a byte shift in one instruction). */
static int has_vbmi_gfni(void) {
    static int cached = -1;
    if (cached < 0) cached = __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("gfni");
    return cached;
}

void lm_quant_set_isa(lm_isa isa) { requested_isa = isa; }
lm_isa lm_quant_isa(void) {
    lm_isa hw = hardware_isa();
    return requested_isa < hw ? requested_isa : hw;
}
const char *lm_isa_name(lm_isa isa) {
    static const char *names[] = {"scalar", "avx2", "avx512-vnni", "best"};
    return isa <= LM_ISA_BEST ? names[isa] : "unknown";
}

static lm_qdot_fn qdot_for(lm_qtype t, lm_isa isa) {
    static const lm_qdot_fn table[3][4] = {
        {lm_dot_q8_0_ref, lm_dot_q4_0_ref, lm_dot_q4_k_ref, lm_dot_q6_k_ref},
        {lm_dot_q8_0_avx2, lm_dot_q4_0_avx2, lm_dot_q4_k_avx2, lm_dot_q6_k_avx2},
        {lm_dot_q8_0_avx512, lm_dot_q4_0_avx512, lm_dot_q4_k_avx512, lm_dot_q6_k_avx512},
    };
    int col = t == LM_QT_Q8_0 ? 0 : t == LM_QT_Q4_0 ? 1 : t == LM_QT_Q4_K ? 2 : t == LM_QT_Q6_K ? 3 : -1;
    return col < 0 ? NULL : table[isa][col];
}

static lm_fdot_fn fdot_for(lm_qtype t, lm_isa isa) {
    static const lm_fdot_fn table[3][3] = {
        {lm_fdot_f32_ref, lm_fdot_f16_ref, lm_fdot_bf16_ref},
        {lm_fdot_f32_avx2, lm_fdot_f16_avx2, lm_fdot_bf16_avx2},
        {lm_fdot_f32_avx512, lm_fdot_f16_avx512, lm_fdot_bf16_avx512},
    };
    int col = t == LM_QT_F32 ? 0 : t == LM_QT_F16 ? 1 : t == LM_QT_BF16 ? 2 : -1;
    return col < 0 ? NULL : table[isa][col];
}

/* ---------------- conversion ---------------- */

static void quantize_row(lm_qtype t, const float *x, void *y, int k) {
    switch (t) {
    case LM_QT_F32: memcpy(y, x, (size_t)k * 4); break;
    case LM_QT_F16: lm_f32_to_f16_row(x, y, (size_t)k); break;
    case LM_QT_BF16:
        for (int i = 0; i < k; i++) ((uint16_t *)y)[i] = lm_f32_to_bf16(x[i]);
        break;
    case LM_QT_Q8_0:
        if (lm_quant_isa() == LM_ISA_AVX512) lm_quantize_row_q8_0_avx512(x, y, k);
        else lm_quantize_row_q8_0(x, y, k);
        break;
    case LM_QT_Q4_0: lm_quantize_row_q4_0(x, y, k); break;
    case LM_QT_Q4_K: lm_quantize_row_q4_k(x, y, k); break;
    case LM_QT_Q6_K: lm_quantize_row_q6_k(x, y, k); break;
    case LM_QT_Q8_K:
        if (lm_quant_isa() == LM_ISA_AVX512) lm_quantize_row_q8_k_avx512(x, y, k);
        else lm_quantize_row_q8_k(x, y, k);
        break;
    }
}

void lm_f32_to_f16_row(const float *x, uint16_t *y, size_t n) {
    if (lm_quant_isa() == LM_ISA_AVX512) {
        lm_f32_to_f16_row_avx512(x, y, n);
        return;
    }
    for (size_t i = 0; i < n; i++) y[i] = lm_f32_to_f16(x[i]);
}

static lm_status check_k(lm_qtype t, int64_t k) {
    if (!lm_qtype_valid(t)) return lm_error(LM_ERR_ARG, "unsupported tensor type id %d", (int)t);
    int be = lm_qtype_block_elems(t);
    if (k <= 0 || k % be || k > INT32_MAX)
        return lm_error(LM_ERR_ARG, "row length %lld is not a positive multiple of %s's block size %d",
                        (long long)k, lm_qtype_name(t), be);
    return LM_OK;
}

lm_status lm_quantize(lm_qtype t, const float *src, void *dst, int64_t n, int64_t k) {
    LM_TRY(check_k(t, k));
    size_t rb = lm_qtype_row_bytes(t, k);
#pragma omp parallel for num_threads(lm_get_threads()) schedule(dynamic, 16) if (n * k >= LM_PARALLEL_MIN_WORK)
    for (int64_t r = 0; r < n; r++) quantize_row(t, src + r * k, (char *)dst + (size_t)r * rb, (int)k);
    return LM_OK;
}

lm_status lm_dequantize(lm_qtype t, const void *src, float *dst, int64_t n, int64_t k) {
    LM_TRY(check_k(t, k));
    size_t rb = lm_qtype_row_bytes(t, k);
#pragma omp parallel for num_threads(lm_get_threads()) schedule(static) if (n * k >= LM_PARALLEL_MIN_WORK)
    for (int64_t r = 0; r < n; r++) lm_dequantize_row(t, (const char *)src + (size_t)r * rb, dst + r * k, (int)k);
    return LM_OK;
}

void lm_quantize_vec(lm_qtype wt, const float *x, void *xq, int K) {
    lm_qtype vt = lm_qtype_vec_type(wt);
    if (vt == LM_QT_F32) memcpy(xq, x, (size_t)K * 4);
    else quantize_row(vt, x, xq, K);
}

float lm_qdot(lm_qtype t, const void *wrow, const void *xq, int K) {
    lm_isa isa = lm_quant_isa();
    lm_fdot_fn f = fdot_for(t, isa);
    if (f) return f(wrow, xq, K);
    return qdot_for(t, isa)(wrow, xq, K / lm_qtype_block_elems(t));
}

/* ---------------- matmul ---------------- */

static int tile_rows(int K) {
    int r = (int)(LM_QMATMUL_TILE_FLOATS / (unsigned)K);
    return r < 16 ? 16 : r;
}

/* Bytes of one quantized activation row on the decode path: Q4_0's
 * multi-row kernels and Q4_K's batched one also take the row laid out
 * for them after it (on any ISA, so that the size does not change with
 * it). */
static size_t qmatmul_x_bytes(lm_qtype t, int K) {
    return t == LM_QT_Q4_0   ? lm_q4_0_x_bytes(K / 32)
           : t == LM_QT_Q8_0 ? lm_q8_0_x_bytes(K / 32)
           : t == LM_QT_Q4_K ? lm_q4_k_x_bytes(K / 256)
                             : lm_qtype_row_bytes(lm_qtype_vec_type(t), K);
}

/* F16 and BF16 with AVX-512 take their panel GEMM from this many
 * activation rows: it beats the batched decode kernel there (1B F16, 8
 * sequences a step: 47 against 41 tokens/s; 12: 54 against 43; at 4 the
 * kernel wins, 35 against 24). */
#define LM_QMATMUL_F16_GEMM_MIN_N 8

/* Types with a batched decode kernel that beats the GEMM up to
 * LM_QMATMUL_BATCHED_GEMM_MIN_N rows (where the CPU runs it). */
static int has_batched_path(lm_qtype t) { return t == LM_QT_Q8_0 || t == LM_QT_Q4_0 || t == LM_QT_Q4_K; }

/* Activation rows from which t takes the GEMM path on this CPU. */
static int qmatmul_gemm_min_n(lm_qtype t) {
    if (lm_quant_isa() == LM_ISA_AVX512) {
        if (lm_fgemm_supported(t)) return LM_QMATMUL_F16_GEMM_MIN_N;
        if (has_batched_path(t) && (t == LM_QT_Q8_0 || has_vbmi_gfni())) return LM_QMATMUL_BATCHED_GEMM_MIN_N;
    }
    return LM_QMATMUL_GEMM_MIN_N;
}

/* Enough for either path any ISA may take for n rows (tests switch the
 * ISA after sizing the scratch). */
size_t lm_qmatmul_scratch(lm_qtype t, int n, int K) {
    size_t gemv = 0, gemm = 0;
    if (lm_qtype_vec_type(t) != LM_QT_F32 && n < (has_batched_path(t) ? LM_QMATMUL_BATCHED_GEMM_MIN_N : LM_QMATMUL_GEMM_MIN_N))
        gemv = (size_t)n * qmatmul_x_bytes(t, K);
    if (t != LM_QT_F32 && n >= (lm_fgemm_supported(t) ? LM_QMATMUL_F16_GEMM_MIN_N : LM_QMATMUL_GEMM_MIN_N)) {
        size_t tile = (size_t)tile_rows(K) * K * sizeof(float), q = lm_qgemm_supported(t) ? lm_qgemm_scratch(n, K) : 0;
        gemm = tile > q ? tile : q;
    }
    return gemm > gemv ? gemm : gemv;
}

static void qmatmul_gemm(float *y, const void *W, lm_qtype t, int rows, int K, const float *x, int n,
                         float *tile) {
    if (lm_quant_isa() == LM_ISA_AVX512 && lm_qgemm_supported(t)) {
        lm_qgemm_avx512(y, W, t, rows, K, x, n, tile);
        return;
    }
    if (lm_quant_isa() == LM_ISA_AVX512 && lm_fgemm_supported(t)) {
        lm_fgemm_avx512(y, W, t, rows, K, x, n);
        return;
    }
    if (t == LM_QT_F32) {
        lm_sgemm(0, 1, n, rows, K, 1.f, x, K, W, K, 0.f, y, rows);
        return;
    }
    size_t rb = lm_qtype_row_bytes(t, K);
    int tr = tile_rows(K);
    for (int r0 = 0; r0 < rows; r0 += tr) {
        int nr = rows - r0 < tr ? rows - r0 : tr;
#pragma omp parallel for num_threads(lm_get_threads()) schedule(static) if ((long)nr * K >= LM_PARALLEL_MIN_WORK)
        for (int r = 0; r < nr; r++) lm_dequantize_row(t, (const char *)W + (size_t)(r0 + r) * rb, tile + (size_t)r * K, K);
        lm_sgemm(0, 1, n, nr, K, 1.f, x, K, tile, K, 0.f, y + r0, rows);
    }
}

/* Decode-path matmul: every weight row is read once and multiplied with
 * all n activation rows while it is in L1. The rows go to the threads by
 * lm_parallel_range: each thread walks one long run, and a thread that
 * finishes first takes the back half of another's, so all finish within
 * a chunk of each other. (Fixed tasks of about a quarter of a thread's
 * rows left one thread idle ~5% of a 1B Q4_0 decode step.)
 *
 * With multi-row kernels a matrix is cut into R stripes of S = rows / R
 * contiguous rows, and unit u is row u of every stripe, rows u + k S. A
 * thread's run of units then reads R long sequential streams, which the
 * kernels prefetch ahead (quant_gemv_avx512.c) and the hardware
 * prefetchers follow. R is 8 for the 8-row kernels, 4 for the batched
 * ones (four rows times up to four sequences). Without multi-row kernels:
 * units of single rows, chunks of GEMV_GRAIN. */
#define GEMV_GRAIN 8

/* One matrix of a decode-path product: its units are [first, first +
 * units) of the job's unit space. Striped: S rows per stripe (unit u is
 * rows u + k S); else a unit is a row, and first a multiple of GEMV_GRAIN. */
typedef struct {
    float *y;
    const char *W;
    int rows, first, stripe;
} gemv_matrix;

typedef struct {
    gemv_matrix mat[LM_QMATMUL_MAX_GROUP];
    int n_mat;
    const char *x; /* F32 rows (fdot) or quantized rows (qdot) */
    size_t rb, xb;
    int K, n, nb;
    lm_fdot_fn fdot;
    lm_qdot_fn qdot;
    /* Several rows at a time, where the ISA has a kernel: eight, then four.
     * They take multi_len: blocks per row (quantized) or K (float rows). */
    lm_qdot4_fn qdot8, qdot4;
    int multi_len;
    /* Four rows times 2-4 activation rows (batched decode), or NULL;
     * takes multi_len too. */
    void (*qdot4xs)(const void *w, size_t rb, const void *x, size_t xb, int S, int nb, float *y);
    int stripes; /* per matrix: 8, 4, or 0 (units of contiguous rows) */
} gemv_job;

/* Row r of matrix m for every activation row, one at a time. */
static void gemv_one_row(const gemv_job *j, const gemv_matrix *m, int r) {
    const char *w = m->W + (size_t)r * j->rb;
    for (int s = 0; s < j->n; s++)
        m->y[(size_t)s * m->rows + r] = j->fdot ? j->fdot(w, (const float *)(j->x + (size_t)s * j->xb), j->K)
                                                : j->qdot(w, j->x + (size_t)s * j->xb, j->nb);
}

/* Unit u of a striped matrix: row u of each of its R stripes (S rows
 * each), by the R-row kernel for every activation row, or by the
 * four-rows-times-sequences kernel (R = 4) four sequences at a time. */
static void gemv_unit(const gemv_job *j, const gemv_matrix *m, int R, int u) {
    const int S = m->stripe;
    const char *w = m->W + (size_t)u * j->rb;
    const size_t stride = (size_t)S * j->rb;
    float out[16];
    if (R == 8) {
        for (int s = 0; s < j->n; s++) {
            j->qdot8(w, stride, j->x + (size_t)s * j->xb, j->multi_len, out);
            for (int k = 0; k < 8; k++) m->y[(size_t)s * m->rows + u + k * S] = out[k];
        }
        return;
    }
    for (int s0 = 0; s0 < j->n; s0 += 4) {
        int ns = j->n - s0 < 4 ? j->n - s0 : 4;
        const char *x = j->x + (size_t)s0 * j->xb;
        if (ns == 1) j->qdot4(w, stride, x, j->multi_len, out);
        else j->qdot4xs(w, stride, x, j->xb, ns, j->multi_len, out);
        for (int q = 0; q < ns; q++)
            for (int k = 0; k < 4; k++) m->y[(size_t)(s0 + q) * m->rows + u + k * S] = out[4 * q + k];
    }
}

/* Units [begin, end) of the job's unit space: one chunk, inside one matrix. */
static void gemv_chunk(void *ctx, int begin, int end) {
    const gemv_job *j = ctx;
    const gemv_matrix *m = &j->mat[0];
    while (m + 1 < j->mat + j->n_mat && begin >= m[1].first) m++;
    int u0 = begin - m->first, u1 = end - m->first;
    if (m->stripe) {
        const int S = m->stripe, R = j->stripes;
        for (int u = u0; u < u1; u++) {
            if (u + (R - 1) * S < m->rows) gemv_unit(j, m, R, u);
            else
                for (int k = 0; k < R && u + k * S < m->rows; k++) gemv_one_row(j, m, u + k * S);
        }
        return;
    }
    for (int r = u0; r < u1 && r < m->rows; r++) gemv_one_row(j, m, r);
}

/* The decode path of lm_qmatmul_group: the activations converted once,
 * then every matrix's row tasks in one parallel run. */
static void qmatmul_gemv(int count, float *const *ys, const void *const *Ws, lm_qtype t, const int *rows, int K,
                         const float *x, int n, void *scratch) {
    lm_isa isa = lm_quant_isa();
    gemv_job j = {.n_mat = count, .rb = lm_qtype_row_bytes(t, K), .K = K, .n = n, .fdot = fdot_for(t, isa)};
    if (j.fdot) {
        j.x = (const char *)x;
        j.xb = (size_t)K * sizeof(float);
        if (isa == LM_ISA_AVX512 && t == LM_QT_F16)
            j.qdot4 = lm_fdot4_f16_avx512, j.qdot8 = lm_fdot8_f16_avx512, j.qdot4xs = lm_fdot4xs_f16_avx512;
        if (isa == LM_ISA_AVX512 && t == LM_QT_BF16)
            j.qdot4 = lm_fdot4_bf16_avx512, j.qdot8 = lm_fdot8_bf16_avx512, j.qdot4xs = lm_fdot4xs_bf16_avx512;
        j.multi_len = K;
    } else {
        lm_qtype vt = lm_qtype_vec_type(t);
        j.xb = qmatmul_x_bytes(t, K);
        for (int s = 0; s < n; s++) quantize_row(vt, x + (size_t)s * K, (char *)scratch + (size_t)s * j.xb, K);
        j.x = scratch;
        j.qdot = qdot_for(t, isa);
        if (isa == LM_ISA_AVX512) {
            int vbmi = has_vbmi_gfni();
            j.qdot4 = t == LM_QT_Q8_0 ? lm_dot4_q8_0_avx512
                      : !vbmi         ? NULL
                      : t == LM_QT_Q6_K ? lm_dot4_q6_k_avx512
                      : t == LM_QT_Q4_0 ? lm_dot4_q4_0_avx512
                      : t == LM_QT_Q4_K ? lm_dot4_q4_k_avx512
                                        : NULL;
            j.qdot8 = t == LM_QT_Q8_0 ? lm_dot8_q8_0_avx512
                      : !vbmi         ? NULL
                      : t == LM_QT_Q6_K ? lm_dot8_q6_k_avx512
                      : t == LM_QT_Q4_0 ? lm_dot8_q4_0_avx512
                      : t == LM_QT_Q4_K ? lm_dot8_q4_k_avx512
                                        : NULL;
        }
        j.nb = j.multi_len = K / lm_qtype_block_elems(t);
        if (t == LM_QT_Q4_0 && j.qdot8) {
            for (int s = 0; s < n; s++) lm_q4_0_arrange_x_avx512((char *)scratch + (size_t)s * j.xb, j.nb);
            if (j.nb % 4 == 0) j.qdot4xs = lm_dot4xs_q4_0_avx512;
        }
        if (t == LM_QT_Q8_0 && isa == LM_ISA_AVX512 && n > 1 && j.nb % 2 == 0) {
            for (int s = 0; s < n; s++) lm_q8_0_arrange_x_avx512((char *)scratch + (size_t)s * j.xb, j.nb);
            j.qdot4xs = lm_dot4xs_q8_0_avx512;
        }
        if (t == LM_QT_Q4_K && j.qdot8 && n > 1) {
            for (int s = 0; s < n; s++) lm_q4_k_arrange_x_avx512((char *)scratch + (size_t)s * j.xb, j.nb);
            j.qdot4xs = lm_dot4xs_q4_k_avx512;
        }
    }
    /* Stripes: 4 for several sequences with the batched kernel, else 8
     * with the 8-row kernel; none without multi-row kernels. */
    j.stripes = n > 1 && j.qdot4xs ? 4 : j.qdot8 ? 8 : 0;
    const int striped = j.stripes > 0, grain = striped ? 1 : GEMV_GRAIN;
    int space = 0;
    long work = 0;
    for (int i = 0; i < count; i++) {
        int S = striped ? (rows[i] + j.stripes - 1) / j.stripes : 0;
        j.mat[i] = (gemv_matrix){.y = ys[i], .W = Ws[i], .rows = rows[i], .first = space, .stripe = S};
        space += striped ? S : (rows[i] + GEMV_GRAIN - 1) / GEMV_GRAIN * GEMV_GRAIN;
        work += (long)rows[i] * K * n;
    }
    /* Small products stay on this thread: waking helpers costs more. */
    if (work < LM_PARALLEL_MIN_WORK) {
        for (int b = 0; b < space; b += grain) gemv_chunk(&j, b, b + grain);
        return;
    }
    lm_parallel_range(space, grain, gemv_chunk, &j);
}

void lm_qmatmul(float *y, const void *W, lm_qtype t, int rows, int K, const float *x, int n, void *scratch) {
    lm_qmatmul_group(1, &y, &W, t, &rows, K, x, n, scratch);
}

void lm_qmatmul_group(int count, float *const *ys, const void *const *Ws, lm_qtype t, const int *rows, int K,
                      const float *x, int n, void *scratch) {
    if (n >= qmatmul_gemm_min_n(t)) {
        for (int i = 0; i < count; i++) qmatmul_gemm(ys[i], Ws[i], t, rows[i], K, x, n, scratch);
        return;
    }
    qmatmul_gemv(count, ys, Ws, t, rows, K, x, n, scratch);
}
