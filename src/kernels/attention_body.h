/* Vectorized fused attention, written once over vec.h and compiled per ISA
 * by attention_avx512.c and attention_avx2.c (names get LM_SFX).
 *
 * Everything is built from two register-blocked tile products (mm_rows,
 * mm_acc) on small packed tiles, so no [T, T] buffer ever exists.
 *
 * Forward: one work item per (batch, head, block of QB queries), OpenMP
 * dynamic schedule. Keys go by chunks of FKB: the chunk of K is packed
 * transposed ([HS][FKB]) and V row-padded; S = Q K^T for the block's rows,
 * then an online softmax (running max m, sum l) rescales each query's
 * accumulator before acc += P V. lse = m + log(l) is saved.
 *
 * Backward (FlashAttention-2 style): D_i = dout_i . out_i first (scratch,
 * B*NH*T floats); then one work item per (batch, kv head), which owns the
 * dk/dv rows of its kv head and the dq rows of the query heads reading it,
 * so there are no races. For each chunk of BKB keys and each block of QBB
 * queries that can see it: S = Q K^T and dP = dO V^T, P = exp(S*scale - lse)
 * (recomputed, masked), dS = P (dP - D) scale; then dV += P^T dO and
 * dK += dS^T Q (chunk-local tiles) and dQ += dS K.
 * Per-thread memory: tiles of [chunk x HS] on the stack; head sizes above
 * LM_ATTN_MAX_HS use the reference. */
#include "kernels/dropout_hash.h"
#include "kernels/kernels_ref.h"
#include "kernels/simd.h"
#include "kernels/vec.h"

#include <math.h>
#include <omp.h>

#define LM_ATTN_MAX_HS 256
#define FKB (4 * LM_VW) /* keys per forward chunk */
#define NFV 4
#define QB 64           /* queries per forward work item */
#define BKB (4 * LM_VW) /* keys per backward chunk */
#define NBV 4
#define QBB 32          /* queries per backward block */
#define VB 4            /* accumulator vectors per row in mm_acc */

typedef uint64_t vu64 __attribute__((vector_size(LM_VW * 8)));

/* Probability dropout of LM_VW consecutive scores from flat index idx: the
 * factor of each, 0 or keep (lm_drop_keep, lane by lane in vectors). */
static inline vf drop_factors(uint64_t base, uint64_t idx, uint32_t threshold, float keep) {
    vu64 z;
    for (int l = 0; l < LM_VW; l++) z[l] = base + (idx + (uint64_t)l) * LM_DROP_GOLDEN;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z = z ^ (z >> 31);
    vi kept = __builtin_convertvector((z >> 40) >= (uint64_t)threshold, vi);
    return vsel(kept, vset1(keep), vset1(0.0f));
}

/* The dropout parameters of a shape, formed once per call. */
typedef struct {
    int on;
    uint64_t base;
    uint32_t threshold;
    float keep;
} attn_drop;
static inline attn_drop attn_drop_of(const lm_attention_shape *s) {
    attn_drop d = {s->dropout > 0, 0, 0, 1.0f};
    if (d.on) {
        d.base = lm_drop_base(s->dropout_seed, s->dropout_stream);
        d.threshold = lm_drop_threshold(s->dropout);
        d.keep = 1.0f / (1.0f - s->dropout);
    }
    return d;
}

/* The dropout counter of score (b, h, i, j): its flat index. */
static inline uint64_t score_index(const lm_attention_shape *s, int b, int h, int i, int j) {
    return (((uint64_t)b * s->NH + (uint64_t)h) * (uint64_t)s->T + (uint64_t)i) * (uint64_t)s->T + (uint64_t)j;
}

static inline int vany(vi m) {
    for (int l = 0; l < LM_VW; l++)
        if (m[l]) return 1;
    return 0;
}

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* Keys query i may see lie in [key_lo, key_hi) (before key_valid). */
static inline int key_lo(const lm_attention_shape *s, int i) {
    return s->window > 0 ? imax(0, i - s->window + 1) : 0;
}
static inline int key_hi(const lm_attention_shape *s, int i) {
    if (s->causal) return i + 1;
    return s->window > 0 ? imin(s->T, i + s->window) : s->T;
}
/* Queries that may see key j lie in [query_lo, query_hi). */
static inline int query_lo(const lm_attention_shape *s, int j) {
    if (s->causal) return j;
    return s->window > 0 ? imax(0, j - s->window + 1) : 0;
}
static inline int query_hi(const lm_attention_shape *s, int j) {
    return s->window > 0 ? imin(s->T, j + s->window) : s->T;
}

/* How many keys of the chunk [j0, j0 + jn) a group of query rows ending
 * at row i_last may see, from j0: the last row sees furthest (key_hi grows
 * with the row). 0 or less: none. */
static inline int group_keys(const lm_attention_shape *s, int i_last, int j0, int jn) {
    return imin(jn, key_hi(s, i_last) - j0);
}

/* Per-chunk key validity lanes (-1 valid, 0 not): key_valid and j < T. */
static inline void chunk_valid(const lm_attention_shape *s, int b, int j0, int nv, vi *valid) {
    for (int c = 0; c < nv; c++) {
        vi ok = {0};
        for (int l = 0; l < LM_VW; l++) {
            int j = j0 + c * LM_VW + l;
            ok[l] = j < s->T && (!s->key_valid || s->key_valid[(size_t)b * s->T + j]) ? -1 : 0;
        }
        valid[c] = ok;
    }
}

/* Lanes of chunk vector c (first key j0c) that a query with key range
 * [lo, hi) may attend to. */
static inline vi lane_mask(vi valid, int j0c, int lo, int hi) {
    vi j = viota() + j0c;
    return valid & (j >= lo) & (j < hi);
}

/* x . y over n floats, in vectors (a row's D = dout . out in backward). */
static inline float dot_row(const float *x, const float *y, int n) {
    vf acc = vset1(0.0f);
    int c = 0;
    for (; c + LM_VW <= n; c += LM_VW) acc += vload(x + c) * vload(y + c);
    float d = vhsum(acc);
    for (; c < n; c++) d += x[c] * y[c];
    return d;
}

/* dst[0:n] += src[0:n], in vectors. */
static inline void add_row(float *dst, const float *src, int n) {
    int c = 0;
    for (; c + LM_VW <= n; c += LM_VW) vstore(dst + c, vload(dst + c) + vload(src + c));
    for (; c < n; c++) dst[c] += src[c];
}

/* Transposed pack: dst[d * ldd + jj] = row (j0 + jj) of src, element d,
 * for jj < jn; zero for jn <= jj < width (a multiple of LM_VW). Tiles of
 * LM_VW keys x LM_VW elements go through a register transpose. */
static inline void pack_t(float *dst, int ldd, const float *src, size_t stride, int j0, int jn, int width,
                          int HS) {
    for (int jt = 0; jt < width; jt += LM_VW)
        for (int dt = 0; dt < HS; dt += LM_VW) {
            int nd = imin(LM_VW, HS - dt);
            vf r[LM_VW];
            for (int q = 0; q < LM_VW; q++) {
                const float *row = src + (size_t)(j0 + jt + q) * stride + dt;
                r[q] = jt + q >= jn ? vset1(0.0f) : nd == LM_VW ? vload(row) : vload_part(row, (size_t)nd, 0.0f);
            }
            vtranspose(r);
            for (int d = 0; d < nd; d++) vstore(dst + (size_t)(dt + d) * ldd + jt, r[d]);
        }
}

/* Row pack: rows [j0, j0+n) of src (HS floats each) into dst with HSP
 * columns, zero-padded, each multiplied by `mul`. */
static inline void pack_rows(float *dst, int HSP, const float *src, size_t stride, int j0, int n, int HS,
                             float mul) {
    for (int jj = 0; jj < n; jj++) {
        float *d = dst + (size_t)jj * HSP;
        const float *r = src + (size_t)(j0 + jj) * stride;
        int c = 0;
        for (; c + LM_VW <= HS; c += LM_VW) vstore(d + c, vload(r + c) * mul);
        if (c < HS) vstore(d + c, vload_part(r + c, (size_t)(HS - c), 0.0f) * mul);
    }
}

/* S[r][0 : nv*VW] = sum_d X[r][d] * Yt[d][0 : nv*VW] for r < R (nv <= 4):
 * two rows at a time, 2 x nv vector accumulators. */
static inline void mm_rows(float *S, int lds, int R, const float *X, int ldx, const float *Yt, int ldy, int HS,
                           int nv) {
    int r = 0;
    if (nv <= 2) /* narrow tiles: four rows at a time keep 8 FMA chains going */
        for (; r + 4 <= R; r += 4) {
            vf a[4][2];
            for (int q = 0; q < 4; q++) a[q][0] = a[q][1] = vset1(0.0f);
            const float *x0 = X + (size_t)r * ldx;
            for (int d = 0; d < HS; d++) {
                const float *y = Yt + (size_t)d * ldy;
                vf y0 = vload(y), y1 = nv > 1 ? vload(y + LM_VW) : vset1(0.0f);
                for (int q = 0; q < 4; q++) {
                    float sq = x0[(size_t)q * ldx + d];
                    a[q][0] += sq * y0;
                    a[q][1] += sq * y1;
                }
            }
            for (int q = 0; q < 4; q++) {
                vstore(S + (size_t)(r + q) * lds, a[q][0]);
                if (nv > 1) vstore(S + (size_t)(r + q) * lds + LM_VW, a[q][1]);
            }
        }
    for (; r + 2 <= R; r += 2) {
        vf a0[4], a1[4];
        for (int c = 0; c < 4; c++) a0[c] = a1[c] = vset1(0.0f);
        const float *x0 = X + (size_t)r * ldx, *x1 = x0 + ldx;
        for (int d = 0; d < HS; d++) {
            const float *y = Yt + (size_t)d * ldy;
            float s0 = x0[d], s1 = x1[d];
            for (int c = 0; c < 4; c++)
                if (c < nv) {
                    vf yv = vload(y + c * LM_VW);
                    a0[c] += s0 * yv;
                    a1[c] += s1 * yv;
                }
        }
        for (int c = 0; c < 4; c++)
            if (c < nv) {
                vstore(S + (size_t)r * lds + c * LM_VW, a0[c]);
                vstore(S + (size_t)(r + 1) * lds + c * LM_VW, a1[c]);
            }
    }
    for (; r < R; r++) {
        vf a0[4];
        for (int c = 0; c < 4; c++) a0[c] = vset1(0.0f);
        const float *x0 = X + (size_t)r * ldx;
        for (int d = 0; d < HS; d++) {
            const float *y = Yt + (size_t)d * ldy;
            for (int c = 0; c < 4; c++)
                if (c < nv) a0[c] += x0[d] * vload(y + c * LM_VW);
        }
        for (int c = 0; c < 4; c++)
            if (c < nv) vstore(S + (size_t)r * lds + c * LM_VW, a0[c]);
    }
}

/* Rows [0, ROWS) of the tile at Cacc, vectors [0, NV): Cacc[r][..] +=
 * sum_{t<n} A(r, t) X[t][..], every accumulator in a register. ROWS and
 * NV are constants at each call, so the loops unroll. */
#define MM_ACC_TILE(ROWS, NV)                                                                                   \
    static inline void mm_acc_tile_##ROWS##_##NV(float *Cacc, int ldc, const float *A, int a_rs, int a_ts, int n, \
                                                 const float *X, int ldx) {                                     \
        vf acc[ROWS][NV];                                                                                        \
        for (int q = 0; q < ROWS; q++)                                                                           \
            for (int c = 0; c < NV; c++) acc[q][c] = vload(Cacc + (size_t)q * ldc + c * LM_VW);                  \
        for (int t = 0; t < n; t++) {                                                                            \
            const float *x = X + (size_t)t * ldx;                                                                \
            vf xv[NV];                                                                                           \
            for (int c = 0; c < NV; c++) xv[c] = vload(x + c * LM_VW);                                           \
            for (int q = 0; q < ROWS; q++) {                                                                     \
                float sq = A[(size_t)q * a_rs + (size_t)t * a_ts];                                               \
                for (int c = 0; c < NV; c++) acc[q][c] += sq * xv[c];                                            \
            }                                                                                                    \
        }                                                                                                        \
        for (int q = 0; q < ROWS; q++)                                                                           \
            for (int c = 0; c < NV; c++) vstore(Cacc + (size_t)q * ldc + c * LM_VW, acc[q][c]);                  \
    }
MM_ACC_TILE(8, 1)
MM_ACC_TILE(4, 2)
MM_ACC_TILE(2, 3)
MM_ACC_TILE(2, 4)
MM_ACC_TILE(1, 1)
MM_ACC_TILE(1, 2)
MM_ACC_TILE(1, 3)
MM_ACC_TILE(1, 4)
#undef MM_ACC_TILE

/* Cacc[r][0 : NHV*VW] += sum_{t<n} A(r, t) * X[t][0 : NHV*VW] for r < R,
 * with A(r, t) = A[r*a_rs + t*a_ts]. Columns go by VB vectors; rows by as
 * many as keep eight accumulator chains going (a narrow head of one or two
 * vectors takes eight or four rows at a time: with two, each FMA would
 * wait on its chain's latency). */
static inline void mm_acc(float *Cacc, int ldc, int R, const float *A, int a_rs, int a_ts, int n, const float *X,
                          int ldx, int NHV) {
    for (int cb = 0; cb < NHV; cb += VB) {
        int nv = imin(VB, NHV - cb);
        float *C0 = Cacc + cb * LM_VW;
        const float *X0 = X + cb * LM_VW;
        int r = 0;
#define MM_ACC_ROWS(ROWS, NV)                                                                            \
    for (; r + (ROWS) <= R; r += (ROWS))                                                                  \
        mm_acc_tile_##ROWS##_##NV(C0 + (size_t)r * ldc, ldc, A + (size_t)r * a_rs, a_rs, a_ts, n, X0, ldx); \
    for (; r < R; r++) mm_acc_tile_1_##NV(C0 + (size_t)r * ldc, ldc, A + (size_t)r * a_rs, a_rs, a_ts, n, X0, ldx);
        switch (nv) {
        case 1: MM_ACC_ROWS(8, 1) break;
        case 2: MM_ACC_ROWS(4, 2) break;
        case 3: MM_ACC_ROWS(2, 3) break;
        default: MM_ACC_ROWS(2, 4) break;
        }
#undef MM_ACC_ROWS
    }
}

void LM_SFX(lm_attention_forward)(float *out, float *lse, const float *q, const float *k, const float *v,
                                  const lm_attention_shape *s) {
    const int T = s->T, HS = s->HS, NH = s->NH, group = s->NH / s->NKV;
    if (HS > LM_ATTN_MAX_HS) {
        lm_attention_forward_ref(out, lse, q, k, v, s);
        return;
    }
    const int HSP = (HS + LM_VW - 1) / LM_VW * LM_VW, NHV = HSP / LM_VW;
    const int nqb = (T + QB - 1) / QB;
    const attn_drop drop = attn_drop_of(s);
    const long items = (long)s->B * NH * nqb;
    const int par = (double)s->B * NH * T * T * HS > 2e6;
#pragma omp parallel if (par)
    {
        float Kt[HS * FKB] __attribute__((aligned(64)));
        float Vp[FKB * HSP] __attribute__((aligned(64)));
        float Qs[QB * HSP] __attribute__((aligned(64)));
        float acc[QB * HSP] __attribute__((aligned(64)));
        float P[QB * FKB] __attribute__((aligned(64)));
        float m[QB], l[QB];
#pragma omp for schedule(dynamic, 1)
        for (long it = 0; it < items; it++) {
            int qb = (int)(it % nqb), h = (int)(it / nqb % NH), b = (int)(it / nqb / NH);
            int g = h / group;
            int i0 = qb * QB, nr = imin(QB, T - i0);
            const float *kb = k + (size_t)b * T * s->kv_stride + (size_t)g * HS;
            const float *vb = v + (size_t)b * T * s->kv_stride + (size_t)g * HS;
            pack_rows(Qs, HSP, q + (size_t)b * T * s->q_stride + (size_t)h * HS, s->q_stride, i0, nr, HS, s->scale);
            for (int r = 0; r < nr; r++) {
                m[r] = -INFINITY;
                l[r] = 0.0f;
            }
            memset(acc, 0, (size_t)nr * HSP * sizeof(float));
            int jlo = key_lo(s, i0), jhi = key_hi(s, i0 + nr - 1);
            for (int j0 = jlo; j0 < jhi; j0 += FKB) {
                int jn = imin(FKB, T - j0);
                /* rows of the block that see some key of the chunk: a range,
                 * since both ends of the key range grow with i */
                int ra = 0, rb = nr;
                while (ra < nr && key_hi(s, i0 + ra) <= j0) ra++;
                while (rb > ra && key_lo(s, i0 + rb - 1) >= j0 + jn) rb--;
                if (ra >= rb) continue;
                pack_t(Kt, FKB, kb, s->kv_stride, j0, jn, FKB, HS);
                /* V rows of whole vectors are read where they are */
                const float *Vr = Vp;
                int ldv = HSP;
                if (HS == HSP) Vr = vb + (size_t)j0 * s->kv_stride, ldv = (int)s->kv_stride;
                else pack_rows(Vp, HSP, vb, s->kv_stride, j0, jn, HS, 1.0f);
                vi valid[NFV];
                chunk_valid(s, b, j0, NFV, valid);
                /* Rows go by groups of LM_VW, each over the keys its last
                 * row can see: the causal triangle of a chunk costs about
                 * half of its square. */
                for (int g0 = ra; g0 < rb; g0 += LM_VW) {
                    int g1 = imin(rb, g0 + LM_VW);
                    int vis = group_keys(s, i0 + g1 - 1, j0, jn); /* keys [j0, j0 + vis) */
                    int nv = (vis + LM_VW - 1) / LM_VW;
                    mm_rows(P + (size_t)g0 * FKB, FKB, g1 - g0, Qs + (size_t)g0 * HSP, HSP, Kt, FKB, HS, nv);
                    for (int r = g0; r < g1; r++) {
                        int lo = key_lo(s, i0 + r), hi = key_hi(s, i0 + r);
                        float *pr = P + (size_t)r * FKB;
                        vf sc[NFV];
                        vi mk[NFV];
                        vf mx = vset1(-INFINITY);
                        for (int c = 0; c < nv; c++) {
                            mk[c] = lane_mask(valid[c], j0 + c * LM_VW, lo, hi);
                            sc[c] = vsel(mk[c], vload(pr + c * LM_VW), vset1(-INFINITY));
                            mx = vmax(mx, sc[c]);
                        }
                        float cmax = vhmax(mx);
                        if (cmax == -INFINITY) { /* nothing visible in this chunk */
                            memset(pr, 0, (size_t)nv * LM_VW * sizeof(float));
                            continue;
                        }
                        float mnew = m[r] > cmax ? m[r] : cmax;
                        float corr = expf(m[r] - mnew); /* 0 on the first visible chunk */
                        vf ps = vset1(0.0f);
                        uint64_t didx = score_index(s, b, h, i0 + r, j0);
                        for (int c = 0; c < nv; c++) {
                            vf p = vsel(mk[c], vexp(sc[c] - mnew), vset1(0.0f));
                            ps += p; /* the normaliser is the undropped sum */
                            if (drop.on && vany(mk[c])) /* hash only keys the row sees */
                                p *= drop_factors(drop.base, didx + (uint64_t)c * LM_VW, drop.threshold, drop.keep);
                            vstore(pr + c * LM_VW, p);
                        }
                        l[r] = l[r] * corr + vhsum(ps);
                        m[r] = mnew;
                        if (corr != 1.0f) {
                            float *a = acc + (size_t)r * HSP;
                            for (int c = 0; c < NHV; c++) vstore(a + c * LM_VW, vload(a + c * LM_VW) * corr);
                        }
                    }
                    mm_acc(acc + (size_t)g0 * HSP, HSP, g1 - g0, P + (size_t)g0 * FKB, FKB, 1, vis, Vr, ldv, NHV);
                }
            }
            for (int r = 0; r < nr; r++) {
                float *o = out + ((size_t)b * T + i0 + r) * NH * HS + (size_t)h * HS;
                float *L = lse + ((size_t)b * NH + h) * T + i0 + r;
                if (l[r] == 0.0f) { /* no key to attend to */
                    memset(o, 0, (size_t)HS * sizeof(float));
                    *L = -INFINITY;
                    continue;
                }
                float inv = 1.0f / l[r];
                const float *a = acc + (size_t)r * HSP;
                for (int d = 0; d < HS; d++) o[d] = a[d] * inv;
                *L = m[r] + logf(l[r]);
            }
        }
    }
}

void LM_SFX(lm_attention_backward)(float *dq, float *dk, float *dv, const float *dout, const float *q,
                                   const float *k, const float *v, const float *out, const float *lse,
                                   const lm_attention_shape *s, float *scratch) {
    const int T = s->T, HS = s->HS, NH = s->NH, NKV = s->NKV, group = s->NH / s->NKV;
    if (HS > LM_ATTN_MAX_HS) {
        lm_attention_backward_ref(dq, dk, dv, dout, q, k, v, out, lse, s);
        return;
    }
    const int HSP = (HS + LM_VW - 1) / LM_VW * LM_VW, NHV = HSP / LM_VW;
    const int par = (double)s->B * NH * T * T * HS > 1e6;
    const attn_drop drop = attn_drop_of(s);
    float *Dall = scratch; /* [B, NH, T] */
    const long rows = (long)s->B * NH * T;
#pragma omp parallel for schedule(static) if (par)
    for (long r = 0; r < rows; r++) {
        int i = (int)(r % T), h = (int)(r / T % NH), b = (int)(r / T / NH);
        size_t o = ((size_t)b * T + i) * NH * HS + (size_t)h * HS;
        Dall[r] = dot_row(dout + o, out + o, HS);
    }
    const long items = (long)s->B * NKV;
#pragma omp parallel if (par)
    {
        float Kt[HS * BKB] __attribute__((aligned(64)));
        float Vt[HS * BKB] __attribute__((aligned(64)));
        float Kp[BKB * HSP] __attribute__((aligned(64)));
        float dKa[BKB * HSP] __attribute__((aligned(64)));
        float dVa[BKB * HSP] __attribute__((aligned(64)));
        float Qp[QBB * HSP] __attribute__((aligned(64)));
        float DOp[QBB * HSP] __attribute__((aligned(64)));
        float DQ[QBB * HSP] __attribute__((aligned(64)));
        float P[QBB * BKB] __attribute__((aligned(64)));
        float dS[QBB * BKB] __attribute__((aligned(64)));
#pragma omp for schedule(dynamic, 1)
        for (long it = 0; it < items; it++) {
            int g = (int)(it % NKV), b = (int)(it / NKV);
            size_t kvoff = (size_t)b * T * s->kv_stride + (size_t)g * HS;
            for (int j0 = 0; j0 < T; j0 += BKB) {
                int jn = imin(BKB, T - j0);
                int ilo = query_lo(s, j0), ihi = query_hi(s, j0 + jn - 1);
                if (ilo >= ihi) continue;
                vi valid[NBV];
                chunk_valid(s, b, j0, NBV, valid);
                int any = 0;
                for (int c = 0; c < NBV; c++)
                    for (int ln = 0; ln < LM_VW; ln++) any |= valid[c][ln] != 0;
                if (!any) continue;
                pack_t(Kt, BKB, k + kvoff, s->kv_stride, j0, jn, BKB, HS);
                pack_t(Vt, BKB, v + kvoff, s->kv_stride, j0, jn, BKB, HS);
                /* rows of whole vectors are read where they are; others
                 * are packed zero-padded */
                const int in_place = HS == HSP;
                const float *Kr = Kp;
                int ldk = HSP;
                if (in_place) Kr = k + kvoff + (size_t)j0 * s->kv_stride, ldk = (int)s->kv_stride;
                else pack_rows(Kp, HSP, k + kvoff, s->kv_stride, j0, jn, HS, 1.0f);
                memset(dKa, 0, (size_t)jn * HSP * sizeof(float));
                memset(dVa, 0, (size_t)jn * HSP * sizeof(float));
                for (int h = g * group; h < (g + 1) * group; h++) {
                    const float *qh = q + (size_t)b * T * s->q_stride + (size_t)h * HS;
                    const float *doh = dout + (size_t)b * T * NH * HS + (size_t)h * HS;
                    const float *Lh = lse + ((size_t)b * NH + h) * T, *Dh = Dall + ((size_t)b * NH + h) * T;
                    for (int i0 = ilo; i0 < ihi; i0 += QBB) {
                        int nr = imin(QBB, ihi - i0);
                        const float *Qr = Qp, *DOr = DOp;
                        int ldq = HSP, lddo = HSP;
                        if (in_place) {
                            Qr = qh + (size_t)i0 * s->q_stride, ldq = (int)s->q_stride;
                            DOr = doh + (size_t)i0 * NH * HS, lddo = NH * HS;
                        } else {
                            pack_rows(Qp, HSP, qh, s->q_stride, i0, nr, HS, 1.0f);
                            pack_rows(DOp, HSP, doh, (size_t)NH * HS, i0, nr, HS, 1.0f);
                        }
                        /* Rows by groups of LM_VW over the key vectors their
                         * last row can see (as in the forward): P and dS
                         * hold no other entries that the products below read. */
                        for (int g0 = 0; g0 < nr; g0 += LM_VW) {
                            int g1 = imin(nr, g0 + LM_VW);
                            int vis = group_keys(s, i0 + g1 - 1, j0, jn);
                            if (vis <= 0) continue;
                            int nv = (vis + LM_VW - 1) / LM_VW;
                            mm_rows(P + (size_t)g0 * BKB, BKB, g1 - g0, Qr + (size_t)g0 * ldq, ldq, Kt, BKB, HS, nv);
                            mm_rows(dS + (size_t)g0 * BKB, BKB, g1 - g0, DOr + (size_t)g0 * lddo, lddo, Vt, BKB, HS, nv);
                            for (int r = g0; r < g1; r++) {
                                int i = i0 + r;
                                float L = Lh[i], Di = Dh[i];
                                int lo = key_lo(s, i), hi = key_hi(s, i);
                                float *pr = P + (size_t)r * BKB, *dr = dS + (size_t)r * BKB;
                                for (int c = 0; c < nv; c++) {
                                    vi mk = lane_mask(valid[c], j0 + c * LM_VW, lo, hi);
                                    if (L == -INFINITY) mk = mk & 0;
                                    vf p = vsel(mk, vexp(vload(pr + c * LM_VW) * s->scale - L), vset1(0.0f));
                                    vf dp = vload(dr + c * LM_VW); /* dout . v_j */
                                    if (drop.on && vany(mk)) {
                                        /* dropped: dV takes f p, dP is f dout.v (see attention.c) */
                                        vf f = drop_factors(drop.base, score_index(s, b, h, i, j0 + c * LM_VW), drop.threshold,
                                                            drop.keep);
                                        vstore(pr + c * LM_VW, p * f);
                                        vstore(dr + c * LM_VW, p * (f * dp - Di) * s->scale);
                                        continue;
                                    }
                                    vstore(pr + c * LM_VW, p);
                                    vstore(dr + c * LM_VW, p * (dp - Di) * s->scale);
                                }
                            }
                        }
                        /* dV += P^T dO and dK += dS^T Q, each group of keys
                         * over the query rows from the first that sees it */
                        for (int k0 = 0; k0 < jn; k0 += LM_VW) {
                            int t0 = imax(0, query_lo(s, j0 + k0) - i0);
                            if (t0 >= nr) continue;
                            int kr = imin(LM_VW, jn - k0);
                            mm_acc(dVa + (size_t)k0 * HSP, HSP, kr, P + (size_t)t0 * BKB + k0, 1, BKB, nr - t0,
                                   DOr + (size_t)t0 * lddo, lddo, NHV);
                            mm_acc(dKa + (size_t)k0 * HSP, HSP, kr, dS + (size_t)t0 * BKB + k0, 1, BKB, nr - t0,
                                   Qr + (size_t)t0 * ldq, ldq, NHV);
                        }
                        /* dQ = dS K, each row group over the keys it sees */
                        memset(DQ, 0, (size_t)nr * HSP * sizeof(float));
                        for (int g0 = 0; g0 < nr; g0 += LM_VW) {
                            int g1 = imin(nr, g0 + LM_VW);
                            int vis = group_keys(s, i0 + g1 - 1, j0, jn);
                            if (vis > 0)
                                mm_acc(DQ + (size_t)g0 * HSP, HSP, g1 - g0, dS + (size_t)g0 * BKB, BKB, 1, vis, Kr, ldk, NHV);
                        }
                        for (int r = 0; r < nr; r++) {
                            float *dqi = dq + ((size_t)b * T + i0 + r) * s->q_stride + (size_t)h * HS;
                            const float *dqa = DQ + (size_t)r * HSP;
                            add_row(dqi, dqa, HS);
                        }
                    }
                }
                for (int jj = 0; jj < jn; jj++) {
                    float *dkr = dk + kvoff + (size_t)(j0 + jj) * s->kv_stride;
                    float *dvr = dv + kvoff + (size_t)(j0 + jj) * s->kv_stride;
                    const float *dka = dKa + (size_t)jj * HSP, *dva = dVa + (size_t)jj * HSP;
                    add_row(dkr, dka, HS);
                    add_row(dvr, dva, HS);
                }
            }
        }
    }
}
