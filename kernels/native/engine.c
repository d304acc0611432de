/*
 * The native training engine's kernels: convolutions (forward, filter and
 * input gradients) as im2col / col2im around a BLAS sgemm (BLIS where it is
 * installed, else OpenBLAS), and batched matrix products. Tensors are NHWC float32, filters [fh, fw, cin, cout], as
 * tfjs lays them out; the caller passes pointers into the wasm backend's
 * memory, so nothing is copied in or out. One BLAS thread per caller: the
 * training engine's parallelism is its data-parallel workers.
 */
#include <stdlib.h>
#include <math.h>
#include <string.h>

/* The CBLAS interface, declared here so that any provider's library links. */
enum { CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112 };
extern void cblas_sgemm(int order, int transpose_a, int transpose_b, int m, int n, int k,
                        float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                        float *c, int ldc);

#ifdef ENGINE_BLIS
/* BLIS: single-threaded unless told otherwise; its configuration names the CPU. */
extern void bli_thread_set_num_threads(long);
extern const char *bli_arch_string(int);
extern int bli_arch_query_id(void);
#define set_blas_threads(n) bli_thread_set_num_threads(n)
#define blas_core() bli_arch_string(bli_arch_query_id())
#define BLAS_NAME "BLIS"
#else
extern void openblas_set_num_threads(int);
extern char *openblas_get_corename(void);
#define set_blas_threads(n) openblas_set_num_threads(n)
#define blas_core() openblas_get_corename()
#define BLAS_NAME "OpenBLAS"
#endif

/* Per calling thread: each training worker has its own scratch buffer. */
static _Thread_local float *scratch = NULL;
static _Thread_local size_t scratch_size = 0;

/* Largest patch matrix kept at once (floats): bigger batches run in chunks. */
#define SCRATCH_LIMIT (8u << 20)

static float *scratch_for(size_t floats) {
  if (floats > scratch_size) {
    free(scratch);
    scratch = malloc(floats * sizeof(float));
    scratch_size = scratch ? floats : 0;
  }
  return scratch;
}

int engine_init(int threads) {
  set_blas_threads(threads);
  return 0;
}

const char *engine_corename(void) { return blas_core(); }

const char *engine_blas(void) { return BLAS_NAME; }

/* groups: 1 for a convolution, cin for a depthwise one (cout = cin · multiplier). */
typedef struct {
  int n, h, w, cin, fh, fw, cout, oh, ow, sh, sw, dh, dw, pt, pl, groups;
} geometry;

static geometry read_geometry(const int *g) {
  geometry c = {g[0], g[1], g[2],  g[3],  g[4],  g[5],  g[6],  g[7],
                g[8], g[9], g[10], g[11], g[12], g[13], g[14], 1};
  return c;
}

/* Images per chunk so that the patch matrix fits the scratch limit. */
static int chunk_images(const geometry *c) {
  size_t per_image = (size_t)c->oh * c->ow * c->fh * c->fw * c->cin;
  int images = per_image > 0 ? (int)(SCRATCH_LIMIT / per_image) : c->n;
  if (images < 1) images = 1;
  return images < c->n ? images : c->n;
}

/* Rows (b, oy, ox) of the patch matrix for images [b0, b0 + count). */
static void im2col(const float *x, float *cols, const geometry *c, int b0, int count) {
  const size_t patch = (size_t)c->fh * c->fw * c->cin;
  float *row = cols;
  for (int b = b0; b < b0 + count; b++) {
    const float *image = x + (size_t)b * c->h * c->w * c->cin;
    for (int oy = 0; oy < c->oh; oy++) {
      for (int ox = 0; ox < c->ow; ox++, row += patch) {
        float *out = row;
        for (int fy = 0; fy < c->fh; fy++) {
          const int iy = oy * c->sh - c->pt + fy * c->dh;
          for (int fx = 0; fx < c->fw; fx++, out += c->cin) {
            const int ix = ox * c->sw - c->pl + fx * c->dw;
            if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w) {
              memset(out, 0, c->cin * sizeof(float));
            } else {
              memcpy(out, image + ((size_t)iy * c->w + ix) * c->cin, c->cin * sizeof(float));
            }
          }
        }
      }
    }
  }
}

/* Adds the patch matrix's rows back into dx (the adjoint of im2col). */
static void col2im(const float *cols, float *dx, const geometry *c, int b0, int count) {
  const size_t patch = (size_t)c->fh * c->fw * c->cin;
  const float *row = cols;
  for (int b = b0; b < b0 + count; b++) {
    float *image = dx + (size_t)b * c->h * c->w * c->cin;
    for (int oy = 0; oy < c->oh; oy++) {
      for (int ox = 0; ox < c->ow; ox++, row += patch) {
        const float *in = row;
        for (int fy = 0; fy < c->fh; fy++) {
          const int iy = oy * c->sh - c->pt + fy * c->dh;
          for (int fx = 0; fx < c->fw; fx++, in += c->cin) {
            const int ix = ox * c->sw - c->pl + fx * c->dw;
            if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w) continue;
            float *to = image + ((size_t)iy * c->w + ix) * c->cin;
            for (int k = 0; k < c->cin; k++) to[k] += in[k];
          }
        }
      }
    }
  }
}

/* y = conv(x, filter): returns 0, or -1 if scratch memory ran out. */
static int im2col_forward(const float *x, const float *filter, float *y, const geometry *gc) {
  const geometry c = *gc;
  const int k = c.fh * c.fw * c.cin;
  const int step = chunk_images(&c);
  const int positions = c.oh * c.ow;
  float *cols = scratch_for((size_t)step * positions * k);
  if (!cols) return -1;
  for (int b0 = 0; b0 < c.n; b0 += step) {
    const int count = b0 + step <= c.n ? step : c.n - b0;
    im2col(x, cols, &c, b0, count);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, count * positions, c.cout, k, 1.0f,
                cols, k, filter, c.cout, 0.0f, y + (size_t)b0 * positions * c.cout, c.cout);
  }
  return 0;
}

/* dfilter = im2col(x)ᵀ · dy. */
static int im2col_backprop_filter(const float *x, const float *dy, float *dfilter,
                                  const geometry *gc) {
  const geometry c = *gc;
  const int k = c.fh * c.fw * c.cin;
  const int step = chunk_images(&c);
  const int positions = c.oh * c.ow;
  float *cols = scratch_for((size_t)step * positions * k);
  if (!cols) return -1;
  for (int b0 = 0; b0 < c.n; b0 += step) {
    const int count = b0 + step <= c.n ? step : c.n - b0;
    im2col(x, cols, &c, b0, count);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, c.cout, count * positions, 1.0f, cols,
                k, dy + (size_t)b0 * positions * c.cout, c.cout, b0 == 0 ? 0.0f : 1.0f, dfilter,
                c.cout);
  }
  return 0;
}

/* dx = col2im(dy · filterᵀ). */
static int im2col_backprop_input(const float *dy, const float *filter, float *dx,
                                 const geometry *gc) {
  const geometry c = *gc;
  const int k = c.fh * c.fw * c.cin;
  const int step = chunk_images(&c);
  const int positions = c.oh * c.ow;
  float *cols = scratch_for((size_t)step * positions * k);
  if (!cols) return -1;
  memset(dx, 0, (size_t)c.n * c.h * c.w * c.cin * sizeof(float));
  for (int b0 = 0; b0 < c.n; b0 += step) {
    const int count = b0 + step <= c.n ? step : c.n - b0;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, count * positions, k, c.cout, 1.0f,
                dy + (size_t)b0 * positions * c.cout, c.cout, filter, c.cout, 0.0f, cols, k);
    col2im(cols, dx, &c, b0, count);
  }
  return 0;
}

/* The three convolutions, as the oneDNN code and the depthwise kernels name them. */
enum { CONV_FORWARD, CONV_BACKWARD_DATA, CONV_BACKWARD_WEIGHTS };

#define IM2COL "im2col + " BLAS_NAME
#ifdef ENGINE_DNNL
/* The same three convolutions on oneDNN, where it is installed. */
#include "convolution_dnnl.c"
#define DNNL_STR(x) DNNL_STR2(x)
#define DNNL_STR2(x) #x
#define CONVOLUTIONS "oneDNN " DNNL_STR(DNNL_VERSION_MAJOR) "." DNNL_STR(DNNL_VERSION_MINOR)
#else
#define CONVOLUTIONS IM2COL
#endif

/* Whether this thread's convolutions run on oneDNN (when built with it) or
   im2col: each thread (a training worker opens the library in its own) sets
   it when it loads the engine, and the kernel tests switch it in theirs
   without touching a training run in another test's thread. */
static _Thread_local int convolutions_on_dnnl = 1;

/* Asks for oneDNN (1) or im2col (0); returns the library the convolutions now run on. */
const char *engine_set_convolutions(int dnnl) {
  convolutions_on_dnnl = dnnl;
  return dnnl ? CONVOLUTIONS : IM2COL;
}

/* Returns from the caller with oneDNN's status when oneDNN is on and took the shape (not 1). */
#ifdef ENGINE_DNNL
#define TRY_DNNL(kind, c, in, other, out)                      \
  if (convolutions_on_dnnl) {                                  \
    const int status = dnnl_convolve(kind, &c, in, other, out); \
    if (status != 1) return status;                            \
  }
#else
#define TRY_DNNL(kind, c, in, other, out)
#endif

int conv2d_forward(const float *x, const float *filter, float *y, const int *g) {
  const geometry c = read_geometry(g);
  TRY_DNNL(CONV_FORWARD, c, x, filter, y)
  return im2col_forward(x, filter, y, &c);
}

int conv2d_backprop_filter(const float *x, const float *dy, float *dfilter, const int *g) {
  const geometry c = read_geometry(g);
  TRY_DNNL(CONV_BACKWARD_WEIGHTS, c, x, dy, dfilter)
  return im2col_backprop_filter(x, dy, dfilter, &c);
}

int conv2d_backprop_input(const float *dy, const float *filter, float *dx, const int *g) {
  const geometry c = read_geometry(g);
  TRY_DNNL(CONV_BACKWARD_DATA, c, dy, filter, dx)
  return im2col_backprop_input(dy, filter, dx, &c);
}

/*
 * Depthwise convolutions (tfjs's filter [fh, fw, cin, multiplier]) run on
 * oneDNN only, as grouped convolutions with one group per input channel:
 * each returns 1 where oneDNN is not built in, is turned off or refuses the
 * shape, and the caller then runs the wasm engine's kernels.
 */
static int depthwise(int kind, const int *g, const float *in, const float *other, float *out) {
#ifdef ENGINE_DNNL
  if (convolutions_on_dnnl) {
    geometry c = read_geometry(g);
    c.groups = c.cin;
    return dnnl_convolve(kind, &c, in, other, out);
  }
#endif
  (void)kind, (void)g, (void)in, (void)other, (void)out;
  return 1;
}

int depthwise_forward(const float *x, const float *filter, float *y, const int *g) {
  return depthwise(CONV_FORWARD, g, x, filter, y);
}

int depthwise_backprop_input(const float *dy, const float *filter, float *dx, const int *g) {
  return depthwise(CONV_BACKWARD_DATA, g, dy, filter, dx);
}

int depthwise_backprop_filter(const float *x, const float *dy, float *dfilter, const int *g) {
  return depthwise(CONV_BACKWARD_WEIGHTS, g, x, dy, dfilter);
}

/*
 * c[i] = op(a[i]) · op(b[i]) for i < batch, where op transposes when asked;
 * an operand with batch 1 is shared by every product (broadcast).
 */
void batch_matmul(const float *a, const float *b, float *c, int batch, int batch_a, int batch_b,
                  int m, int n, int k, int transpose_a, int transpose_b) {
  for (int i = 0; i < batch; i++) {
    const float *ai = a + (size_t)(batch_a == 1 ? 0 : i) * m * k;
    const float *bi = b + (size_t)(batch_b == 1 ? 0 : i) * k * n;
    cblas_sgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans,
                transpose_b ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, ai, transpose_a ? m : k, bi,
                transpose_b ? k : n, 0.0f, c + (size_t)i * m * n, n);
  }
}

/* Zeros an odd last row and column of each image (kept out of line: inlined,
   it stops gcc vectorising the pooling loop, 6× slower). */
__attribute__((noinline)) static void zero_uncovered(float *dx, int n, int h, int w, int c,
                                                     int last_row, int last_column) {
  const size_t row = (size_t)w * c;
  for (int b = 0; b < n; b++) {
    float *image = dx + (size_t)b * h * row;
    if (last_row) memset(image + (size_t)(h - 1) * row, 0, row * sizeof(float));
    if (last_column) {
      for (int y = 0; y < h; y++) memset(image + y * row + (size_t)(w - 1) * c, 0, c * sizeof(float));
    }
  }
}

/*
 * Max-pool gradient: each output cell's gradient goes to the first maximum
 * of its window (as tfjs's cpu backend does). g: n h w c oh ow fh fw sh sw
 * padTop padLeft.
 */
void max_pool_grad(const float *x, const float *dy, float *dx, const int *g) {
  const int n = g[0], h = g[1], w = g[2], c = g[3], oh = g[4], ow = g[5], fh = g[6], fw = g[7];
  const int sh = g[8], sw = g[9], pt = g[10], pl = g[11];
  const size_t row = (size_t)w * c;
  if (fh == 2 && fw == 2 && sh == 2 && sw == 2 && pt == 0 && pl == 0 && 2 * oh + 1 >= h &&
      2 * ow + 1 >= w && 2 * oh <= h && 2 * ow <= w) {
    /* The models' pooling: windows tile the image (but for a last odd row or
       column, which no window covers: a 7×7 map pools to 3×3), so each other
       input pixel is written exactly once, and the first-maximum choice is
       made with selects that vectorise. */
    if (2 * oh < h || 2 * ow < w) zero_uncovered(dx, n, h, w, c, 2 * oh < h, 2 * ow < w);
    for (int b = 0; b < n; b++) {
      for (int oy = 0; oy < oh; oy++) {
        for (int ox = 0; ox < ow; ox++, dy += c) {
          const size_t p00 = ((size_t)b * h + 2 * oy) * row + (size_t)2 * ox * c;
          const float *restrict x00 = x + p00, *restrict x01 = x00 + c;
          const float *restrict x10 = x00 + row, *restrict x11 = x10 + c;
          const float *restrict g = dy;
          float *restrict d00 = dx + p00, *restrict d01 = d00 + c;
          float *restrict d10 = d00 + row, *restrict d11 = d10 + c;
          for (int k = 0; k < c; k++) {
            /* later taps win only when strictly larger: the first maximum */
            const float m1 = x01[k] > x00[k] ? x01[k] : x00[k];
            const float f1 = x01[k] > x00[k] ? 1.0f : 0.0f;
            const float m2 = x10[k] > m1 ? x10[k] : m1;
            const float f2 = x10[k] > m1 ? 1.0f : 0.0f;
            const float f3 = x11[k] > m2 ? 1.0f : 0.0f;
            d11[k] = g[k] * f3;
            d10[k] = g[k] * f2 * (1.0f - f3);
            d01[k] = g[k] * f1 * (1.0f - f2) * (1.0f - f3);
            d00[k] = g[k] * (1.0f - f1) * (1.0f - f2) * (1.0f - f3);
          }
        }
      }
    }
    return;
  }
  memset(dx, 0, (size_t)n * h * row * sizeof(float));
  for (int b = 0; b < n; b++) {
    const size_t image = (size_t)b * h * row;
    for (int oy = 0; oy < oh; oy++) {
      const int y0 = oy * sh - pt < 0 ? 0 : oy * sh - pt;
      const int y1 = oy * sh - pt + fh > h ? h : oy * sh - pt + fh;
      for (int ox = 0; ox < ow; ox++) {
        const int x0 = ox * sw - pl < 0 ? 0 : ox * sw - pl;
        const int x1 = ox * sw - pl + fw > w ? w : ox * sw - pl + fw;
        for (int k = 0; k < c; k++, dy++) {
          float best = -__builtin_inff();
          long best_at = -1;
          for (int y = y0; y < y1; y++) {
            for (int xx = x0; xx < x1; xx++) {
              const size_t at = image + y * row + (size_t)xx * c + k;
              if (x[at] > best) {
                best = x[at];
                best_at = (long)at;
              }
            }
          }
          if (best_at >= 0) dx[best_at] += *dy;
        }
      }
    }
  }
}

/* ReLU's gradient from its output: dx = dy where y > 0, else 0. */
void relu_grad(const float *restrict dy, const float *restrict y, float *restrict dx, int n) {
  for (int i = 0; i < n; i++) dx[i] = y[i] > 0 ? dy[i] : 0.0f;
}

/* out[j] = scale · Σ_i x[i·width + j]: Sum and Mean over leading axes, in double. */
void sum_rows(const float *x, float *out, int rows, int width, double scale) {
  double *acc = calloc((size_t)width, sizeof(double));
  if (!acc) return;
  for (int i = 0; i < rows; i++, x += width) {
    for (int j = 0; j < width; j++) acc[j] += x[j];
  }
  for (int j = 0; j < width; j++) out[j] = (float)(acc[j] * scale);
  free(acc);
}

/*
 * Per column c of a rows × channels matrix: sums[c] = Σ (a − sa[c]) and
 * products[c] = Σ (a − sa[c])·(b − sb[c]). Blocks of rows are summed in
 * float (vectorised), the blocks in double; the shifts keep the float sums
 * small (no cancellation when a mean is taken out afterwards).
 */
#define SUM_BLOCK 64
static int column_sums(const float *a, const float *sa, const float *b, const float *sb, int rows,
                       int channels, double *sums, double *products) {
  float *restrict partial = malloc(2 * (size_t)channels * sizeof(float));
  if (!partial) return -1;
  float *restrict partial_products = partial + channels;
  for (int c = 0; c < channels; c++) sums[c] = products[c] = 0;
  for (int r0 = 0; r0 < rows; r0 += SUM_BLOCK) {
    const int r1 = r0 + SUM_BLOCK < rows ? r0 + SUM_BLOCK : rows;
    memset(partial, 0, 2 * (size_t)channels * sizeof(float));
    for (int r = r0; r < r1; r++) {
      const float *restrict ar = a + (size_t)r * channels, *restrict br = b + (size_t)r * channels;
      for (int c = 0; c < channels; c++) {
        const float da = ar[c] - sa[c];
        partial[c] += da;
        partial_products[c] += da * (br[c] - sb[c]);
      }
    }
    for (int c = 0; c < channels; c++) {
      sums[c] += partial[c];
      products[c] += partial_products[c];
    }
  }
  free(partial);
  return 0;
}

/*
 * Training-mode BatchNorm over the last axis, as kernels/batch_norm.ts
 * defines it: batch statistics (biased variance), y = a·x + (β − a·mean)
 * with a = γ/√(variance + ε).
 */
int batch_norm_train(const float *x, const float *gamma, const float *beta, float *y, float *mean,
                     float *variance, int rows, int channels, double epsilon) {
  double *sums = calloc(2 * (size_t)channels, sizeof(double));
  float *ab = malloc(2 * (size_t)channels * sizeof(float));
  if (!sums || !ab) {
    free(sums);
    free(ab);
    return -1;
  }
  double *squares = sums + channels;
  float *scale = ab, *shift = ab + channels;
  /* Sums of x − x[0] (its first row): the variance without cancellation. */
  if (rows < 1 || column_sums(x, x, x, x, rows, channels, sums, squares)) {
    free(sums);
    free(ab);
    return -1;
  }
  const float *row;
  for (int c = 0; c < channels; c++) {
    const double offset = sums[c] / rows;
    const double m = x[c] + offset;
    double v = squares[c] / rows - offset * offset;
    if (v < 0) v = 0;
    mean[c] = (float)m;
    variance[c] = (float)v;
    scale[c] = (float)(gamma[c] / sqrt(v + epsilon));
    shift[c] = (float)(beta[c] - scale[c] * m);
  }
  row = x;
  for (int r = 0; r < rows; r++, row += channels, y += channels) {
    for (int c = 0; c < channels; c++) y[c] = row[c] * scale[c] + shift[c];
  }
  free(sums);
  free(ab);
  return 0;
}

/* Its gradient: dβ = Σ dy, dγ = Σ dy·x̂, dx = a·(dy − (dβ + x̂·dγ)/R). */
int batch_norm_train_grad(const float *dy, const float *x, const float *gamma, const float *mean,
                          const float *variance, float *dx, float *dgamma, float *dbeta, int rows,
                          int channels, double epsilon) {
  double *sums = calloc(2 * (size_t)channels, sizeof(double));
  /* Zeroed: `a` is dy's (zero) shift in the sums before it holds its coefficient. */
  float *coefficients = calloc(3 * (size_t)channels, sizeof(float));
  if (!sums || !coefficients) {
    free(sums);
    free(coefficients);
    return -1;
  }
  double *sum_dy_x = sums + channels;
  float *a = coefficients, *p = coefficients + channels, *q = coefficients + 2 * channels;
  const float *g, *row;
  /* Σ dy and Σ dy·(x − mean): dγ without cancellation. */
  if (column_sums(dy, a, x, mean, rows, channels, sums, sum_dy_x)) {
    free(sums);
    free(coefficients);
    return -1;
  }
  for (int c = 0; c < channels; c++) {
    const double m = mean[c];
    const double inverse_std = 1.0 / sqrt((double)variance[c] + epsilon);
    const double dg = sum_dy_x[c] * inverse_std;
    dgamma[c] = (float)dg;
    dbeta[c] = (float)sums[c];
    a[c] = (float)(gamma[c] * inverse_std);
    p[c] = (float)(-a[c] * dg * inverse_std / rows);
    q[c] = (float)(-a[c] * sums[c] / rows - p[c] * m);
  }
  g = dy;
  row = x;
  for (int r = 0; r < rows; r++, g += channels, row += channels, dx += channels) {
    for (int c = 0; c < channels; c++) dx[c] = a[c] * g[c] + p[c] * row[c] + q[c];
  }
  free(sums);
  free(coefficients);
  return 0;
}

/*
 * One Adam update over n weights (train/adam.ts). The arithmetic is the
 * JavaScript's, step for step: doubles, stored as floats, and no fused
 * multiply-add (which would round differently), so both engines make
 * identical updates; it still vectorises, four doubles at a time.
 */
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
void adam_update(float *restrict w, const float *restrict g, float *restrict m, float *restrict v,
                 int n, double beta1, double beta2, double step_size, double second_correction,
                 double epsilon) {
  for (int i = 0; i < n; i++) {
    const double gi = g[i];
    const float mi = (float)(beta1 * m[i] + (1 - beta1) * gi);
    const float vi = (float)(beta2 * v[i] + (1 - beta2) * gi * gi);
    m[i] = mi;
    v[i] = vi;
    w[i] = (float)(w[i] - step_size * mi / (sqrt(vi * second_correction) + epsilon));
  }
}
#pragma GCC pop_options
