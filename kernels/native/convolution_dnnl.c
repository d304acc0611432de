/*
 * Convolutions on oneDNN (what PyTorch's CPU convolutions call), compiled
 * into the engine when oneDNN is installed (ENGINE_DNNL). Activations stay
 * NHWC in the wasm backend's memory and are handed to oneDNN in place; only
 * the filter (a few thousand floats) is reordered between tfjs's
 * [fh, fw, cin, cout] and the blocked layout oneDNN's kernel chose. Each
 * shape's primitives are created once per calling thread and kept.
 */
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdio.h>

extern void omp_set_num_threads(int);

/* A convolution of one kind and geometry, ready to run. */
typedef struct {
  int kind;
  geometry g;
  dnnl_primitive_t convolution;
  /* tfjs's filter layout <-> the primitive's, or NULL where they are the same. */
  dnnl_primitive_t filter_reorder;
  /* Memories whose data handles are set per call; `blocked` owns its buffer. */
  dnnl_memory_t activations_in, activations_out, filter_user, filter_blocked;
} plan;

/* Plans kept per thread: a model has a few convolutions, three kinds each, and
   a last short batch; beyond this the oldest plan is replaced. */
#define PLAN_SLOTS 48

static _Thread_local dnnl_engine_t dnnl_cpu_engine = NULL;
static _Thread_local dnnl_stream_t dnnl_cpu_stream = NULL;
static _Thread_local plan *plans[PLAN_SLOTS];
static _Thread_local int next_slot = 0;

static void plan_destroy(plan *p) {
  if (!p) return;
  dnnl_primitive_destroy(p->convolution);
  if (p->filter_reorder) dnnl_primitive_destroy(p->filter_reorder);
  dnnl_memory_destroy(p->activations_in);
  dnnl_memory_destroy(p->activations_out);
  dnnl_memory_destroy(p->filter_user);
  if (p->filter_blocked) dnnl_memory_destroy(p->filter_blocked);
  free(p);
}

/* Activations are NHWC, as tfjs keeps them. (With one channel NCHW is the
   same bytes, but oneDNN then picks its reference kernel, 100× slower.) */
static int activations_md(dnnl_memory_desc_t *md, int n, int c, int h, int w) {
  const dnnl_dims_t dims = {n, c, h, w};
  return dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, dnnl_nhwc);
}

/* The filter as oneDNN sees it: `any` (its choice) or tfjs's layout. */
static int filter_md(dnnl_memory_desc_t *md, const geometry *c, int tfjs_layout) {
  if (c->groups == 1) {
    const dnnl_dims_t dims = {c->cout, c->cin, c->fh, c->fw};
    return dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32,
                                        tfjs_layout ? dnnl_hwio : dnnl_format_tag_any);
  }
  /* Grouped: [groups, cout/groups, cin/groups, fh, fw]; tfjs's depthwise
     filter is [fh, fw, cin, multiplier] with one input channel a group. */
  const int multiplier = c->cout / c->groups;
  const dnnl_dims_t dims = {c->groups, multiplier, c->cin / c->groups, c->fh, c->fw};
  if (!tfjs_layout) return dnnl_memory_desc_init_by_tag(md, 5, dims, dnnl_f32, dnnl_format_tag_any);
  const dnnl_dims_t strides = {multiplier, 1, 1, (dnnl_dim_t)c->fw * c->cout, c->cout};
  return dnnl_memory_desc_init_by_strides(md, 5, dims, dnnl_f32, strides);
}

/* A training worker's thread ends with its pool: its plans, stream and engine go with it. */
static pthread_key_t thread_end;
static pthread_once_t thread_end_once = PTHREAD_ONCE_INIT;

static void release_thread(void *unused) {
  (void)unused;
  for (int i = 0; i < PLAN_SLOTS; i++) {
    plan_destroy(plans[i]);
    plans[i] = NULL;
  }
  if (dnnl_cpu_stream) dnnl_stream_destroy(dnnl_cpu_stream);
  if (dnnl_cpu_engine) dnnl_engine_destroy(dnnl_cpu_engine);
  dnnl_cpu_stream = NULL;
  dnnl_cpu_engine = NULL;
}

static void create_thread_end(void) { pthread_key_create(&thread_end, release_thread); }

static int ensure_engine(void) {
  if (dnnl_cpu_engine) return 0;
  pthread_once(&thread_end_once, create_thread_end);
  /* Any non-NULL value: the destructor runs only for threads that set one. */
  pthread_setspecific(thread_end, &thread_end);
  /* One thread per caller, as for the BLAS: parallelism is the workers'. */
  omp_set_num_threads(1);
  if (dnnl_engine_create(&dnnl_cpu_engine, dnnl_cpu, 0) != dnnl_success) return -1;
  if (dnnl_stream_create(&dnnl_cpu_stream, dnnl_cpu_engine, dnnl_stream_default_flags) !=
      dnnl_success) {
    dnnl_engine_destroy(dnnl_cpu_engine);
    dnnl_cpu_engine = NULL;
    return -1;
  }
  return 0;
}

/* Creates the primitives of one convolution; NULL where oneDNN cannot. */
static plan *plan_create(int kind, const geometry *c) {
  dnnl_memory_desc_t src, dst, filter_any, filter_tfjs;
  if (activations_md(&src, c->n, c->cin, c->h, c->w) || activations_md(&dst, c->n, c->cout, c->oh, c->ow) ||
      filter_md(&filter_any, c, 0) || filter_md(&filter_tfjs, c, 1)) {
    return NULL;
  }
  const dnnl_dims_t strides = {c->sh, c->sw};
  const dnnl_dims_t dilates = {c->dh - 1, c->dw - 1};
  const dnnl_dims_t pad_l = {c->pt, c->pl};
  const dnnl_dims_t pad_r = {(c->oh - 1) * c->sh + (c->fh - 1) * c->dh + 1 - c->h - c->pt,
                             (c->ow - 1) * c->sw + (c->fw - 1) * c->dw + 1 - c->w - c->pl};
  dnnl_convolution_desc_t forward_desc, desc;
  if (dnnl_dilated_convolution_forward_desc_init(&forward_desc, dnnl_forward_training,
                                                 dnnl_convolution_direct, &src, &filter_any, NULL,
                                                 &dst, strides, dilates, pad_l, pad_r)) {
    return NULL;
  }
  dnnl_primitive_desc_t forward_pd = NULL, pd = NULL;
  if (dnnl_primitive_desc_create(&forward_pd, &forward_desc, NULL, dnnl_cpu_engine, NULL)) {
    return NULL;
  }
  dnnl_status_t status = dnnl_success;
  if (kind == CONV_FORWARD) {
    pd = forward_pd;
    forward_pd = NULL;
  } else {
    status = kind == CONV_BACKWARD_DATA
                 ? dnnl_dilated_convolution_backward_data_desc_init(
                       &desc, dnnl_convolution_direct, &src, &filter_any, &dst, strides, dilates,
                       pad_l, pad_r)
                 : dnnl_dilated_convolution_backward_weights_desc_init(
                       &desc, dnnl_convolution_direct, &src, &filter_any, NULL, &dst, strides,
                       dilates, pad_l, pad_r);
    if (status == dnnl_success) {
      status = dnnl_primitive_desc_create(&pd, &desc, NULL, dnnl_cpu_engine, forward_pd);
    }
    dnnl_primitive_desc_destroy(forward_pd);
    if (status != dnnl_success) return NULL;
  }
  plan *p = calloc(1, sizeof(plan));
  if (!p) {
    dnnl_primitive_desc_destroy(pd);
    return NULL;
  }
  p->kind = kind;
  p->g = *c;
  const dnnl_memory_desc_t *chosen = dnnl_primitive_desc_query_md(
      pd, kind == CONV_BACKWARD_WEIGHTS ? dnnl_query_diff_weights_md : dnnl_query_weights_md, 0);
  status = dnnl_primitive_create(&p->convolution, pd);
  const dnnl_memory_desc_t *in_md = kind == CONV_BACKWARD_DATA ? &dst : &src;
  const dnnl_memory_desc_t *out_md = kind == CONV_FORWARD ? &dst : &src;
  if (status == dnnl_success) status = dnnl_memory_create(&p->activations_in, in_md, dnnl_cpu_engine, DNNL_MEMORY_NONE);
  if (status == dnnl_success) status = dnnl_memory_create(&p->activations_out, out_md, dnnl_cpu_engine, DNNL_MEMORY_NONE);
  if (status == dnnl_success) status = dnnl_memory_create(&p->filter_user, &filter_tfjs, dnnl_cpu_engine, DNNL_MEMORY_NONE);
  if (status == dnnl_success && !dnnl_memory_desc_equal(chosen, &filter_tfjs)) {
    status = dnnl_memory_create(&p->filter_blocked, chosen, dnnl_cpu_engine, DNNL_MEMORY_ALLOCATE);
    dnnl_primitive_desc_t reorder_pd = NULL;
    if (status == dnnl_success) {
      status = kind == CONV_BACKWARD_WEIGHTS
                   ? dnnl_reorder_primitive_desc_create(&reorder_pd, chosen, dnnl_cpu_engine,
                                                        &filter_tfjs, dnnl_cpu_engine, NULL)
                   : dnnl_reorder_primitive_desc_create(&reorder_pd, &filter_tfjs, dnnl_cpu_engine,
                                                        chosen, dnnl_cpu_engine, NULL);
    }
    if (status == dnnl_success) status = dnnl_primitive_create(&p->filter_reorder, reorder_pd);
    dnnl_primitive_desc_destroy(reorder_pd);
  }
  dnnl_primitive_desc_destroy(pd);
  if (status != dnnl_success) {
    plan_destroy(p);
    return NULL;
  }
  return p;
}

static plan *plan_for(int kind, const geometry *c) {
  for (int i = 0; i < PLAN_SLOTS; i++) {
    if (plans[i] && plans[i]->kind == kind && !memcmp(&plans[i]->g, c, sizeof *c)) return plans[i];
  }
  plan *p = plan_create(kind, c);
  if (!p) return NULL;
  plan_destroy(plans[next_slot]);
  plans[next_slot] = p;
  next_slot = (next_slot + 1) % PLAN_SLOTS;
  return p;
}

static int run(dnnl_primitive_t primitive, int count, const dnnl_exec_arg_t *args) {
  return dnnl_primitive_execute(primitive, dnnl_cpu_stream, count, args) == dnnl_success ? 0 : -1;
}

/*
 * One convolution of the given kind on oneDNN: `in` is x (forward, filter
 * gradient) or dy (input gradient), `out` is y or dx, `filter` is read
 * (forward, input gradient) or written (filter gradient). Returns 0, or 1
 * when oneDNN cannot take this shape (the caller runs im2col instead).
 */
static int dnnl_convolve(int kind, const geometry *c, const float *in, const float *other,
                            float *out) {
  if (ensure_engine()) return 1;
  plan *p = plan_for(kind, c);
  if (!p) return 1;
  const float *filter = kind == CONV_BACKWARD_WEIGHTS ? NULL : other;
  dnnl_memory_set_data_handle(p->activations_in, (void *)in);
  if (kind == CONV_BACKWARD_WEIGHTS) {
    /* in = x, other = dy, out = dfilter */
    dnnl_memory_set_data_handle(p->activations_out, (void *)other);
    dnnl_memory_set_data_handle(p->filter_user, out);
  } else {
    dnnl_memory_set_data_handle(p->activations_out, out);
    dnnl_memory_set_data_handle(p->filter_user, (void *)filter);
  }
  dnnl_memory_t filter_memory = p->filter_blocked ? p->filter_blocked : p->filter_user;
  if (p->filter_reorder && kind != CONV_BACKWARD_WEIGHTS) {
    const dnnl_exec_arg_t reorder[] = {{DNNL_ARG_FROM, p->filter_user}, {DNNL_ARG_TO, p->filter_blocked}};
    if (run(p->filter_reorder, 2, reorder)) return -1;
  }
  int status;
  if (kind == CONV_FORWARD) {
    const dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, p->activations_in},
                                    {DNNL_ARG_WEIGHTS, filter_memory},
                                    {DNNL_ARG_DST, p->activations_out}};
    status = run(p->convolution, 3, args);
  } else if (kind == CONV_BACKWARD_DATA) {
    const dnnl_exec_arg_t args[] = {{DNNL_ARG_DIFF_DST, p->activations_in},
                                    {DNNL_ARG_WEIGHTS, filter_memory},
                                    {DNNL_ARG_DIFF_SRC, p->activations_out}};
    status = run(p->convolution, 3, args);
  } else {
    const dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, p->activations_in},
                                    {DNNL_ARG_DIFF_DST, p->activations_out},
                                    {DNNL_ARG_DIFF_WEIGHTS, filter_memory}};
    status = run(p->convolution, 3, args);
    if (status == 0 && p->filter_reorder) {
      const dnnl_exec_arg_t reorder[] = {{DNNL_ARG_FROM, p->filter_blocked}, {DNNL_ARG_TO, p->filter_user}};
      status = run(p->filter_reorder, 2, reorder);
    }
  }
  if (status == 0 && dnnl_stream_wait(dnnl_cpu_stream) != dnnl_success) status = -1;
  return status;
}
