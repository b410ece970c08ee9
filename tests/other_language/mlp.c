/* The XOR MLP in C99 for `xor-rosetta verify --cmd ./mlp`: forward pass, backprop, SGD (with torch's momentum)
 * and Adam (Kingma & Ba, each bias correction a division), float64, canonical layout W (fan_in, fan_out).
 * It speaks xor-rosetta's child-process protocol, version 2 (docs/protocol.md): one JSON request per line on
 * stdin, one JSON answer per line on stdout echoing the request's id; floats travel as "%.17g" strings.
 * Build: cc -O2 -std=c99 -o mlp mlp.c -lm.  MLP_MUTANT=sign makes every update climb the gradient (a mutant the
 * tests expect `verify` to diagnose). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a small JSON reader: enough for the driver's requests ---- */
typedef struct J { char type; double num; char *str; struct J **item; char **key; int n; } J;  /* type: {[s n t f z */

static const char *p;  /* the parse position */
static void ws(void) { while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++; }
static J *node(char type) { J *j = calloc(1, sizeof *j); j->type = type; return j; }
static J *value(void);

static char *string(void) {  /* after the opening quote; escapes kept simple: \" \\ \/ \n \t, \u as '?' */
  char *out = malloc(strlen(p) + 1), *o = out;
  while (*p && *p != '"') {
    if (*p == '\\') {
      p++;
      if (*p == 'n') *o++ = '\n'; else if (*p == 't') *o++ = '\t';
      else if (*p == 'u') { *o++ = '?'; p += 4; } else *o++ = *p;
      p++;
    } else *o++ = *p++;
  }
  *o = 0;
  if (*p) p++;
  return out;
}

static J *value(void) {
  ws();
  J *j;
  if (*p == '{' || *p == '[') {
    char close = *p == '{' ? '}' : ']';
    j = node(*p++);
    ws();
    while (*p && *p != close) {
      j->item = realloc(j->item, (j->n + 1) * sizeof *j->item);
      j->key = realloc(j->key, (j->n + 1) * sizeof *j->key);
      j->key[j->n] = NULL;
      if (close == '}') { ws(); p++; j->key[j->n] = string(); ws(); p++; }  /* "key" : */
      j->item[j->n++] = value();
      ws();
      if (*p == ',') p++;
      ws();
    }
    if (*p) p++;
  } else if (*p == '"') { p++; j = node('s'); j->str = string(); }
  else if (*p == 't' || *p == 'f' || *p == 'n') { j = node(*p == 'n' ? 'z' : *p); while (*p >= 'a' && *p <= 'z') p++; }
  else { char *end; j = node('n'); j->num = strtod(p, &end); p = end > p ? end : p + 1; }
  return j;
}

static void drop(J *j) {
  if (!j) return;
  for (int i = 0; i < j->n; i++) { drop(j->item[i]); free(j->key[i]); }
  free(j->item); free(j->key); free(j->str); free(j);
}

static J *get(J *j, const char *key) {
  for (int i = 0; j && j->type == '{' && i < j->n; i++) if (!strcmp(j->key[i], key)) return j->item[i];
  return NULL;
}
static double num(J *j) { return !j ? NAN : j->type == 's' ? strtod(j->str, NULL) : j->num; }  /* "0.1" or 0.1 */
static const char *str(J *j) { return j && j->type == 's' ? j->str : ""; }

/* ---- the model ---- */
enum { MAXL = 8 };
typedef struct {
  int nl, size[MAXL + 1], act[MAXL], bce, opt, batch;  /* opt: 0 sgd, 1 momentum, 2 adam */
  double lr, mu, b1, b2, eps;
  double *w[MAXL], *b[MAXL];                      /* W[l]: size[l] x size[l+1], row-major; b[l]: size[l+1] */
  double *mw[MAXL], *mb[MAXL], *vw[MAXL], *vb[MAXL];  /* optimizer state, shaped as the params */
  long t, done;                                   /* Adam's step count; updates so far (the batch window) */
} Model;

static const char *ACTS[] = {"tanh", "sigmoid", "relu", "linear"};
static double f(int a, double z) { return a == 0 ? tanh(z) : a == 1 ? 1 / (1 + exp(-z)) : a == 2 ? (z > 0 ? z : 0) : z; }
static double df(int a, double z, double y) { return a == 0 ? 1 - y * y : a == 1 ? y * (1 - y) : a == 2 ? (z > 0) : 1; }

static Model **models;
static int nmodels;

/* forward over n rows of x (n x 2): zs[l], hs[l+1] (n x size[l+1]) filled; hs[0] = x */
static void forward(Model *m, int n, double **zs, double **hs) {
  for (int l = 0; l < m->nl; l++) {
    int fi = m->size[l], fo = m->size[l + 1];
    for (int r = 0; r < n; r++)
      for (int j = 0; j < fo; j++) {
        double s = 0;
        for (int k = 0; k < fi; k++) s += hs[l][r * fi + k] * m->w[l][k * fo + j];
        zs[l][r * fo + j] = s + m->b[l][j];
        hs[l + 1][r * fo + j] = f(m->act[l], zs[l][r * fo + j]);
      }
  }
}

/* loss over n rows, and (if gw) its gradients into gw, gb */
static double backprop(Model *m, int n, const double *x, const double *y, double **gw, double **gb) {
  double *zs[MAXL], *hs[MAXL + 1], loss = 0;
  int L = m->nl;
  hs[0] = (double *)x;
  for (int l = 0; l < L; l++) { zs[l] = calloc(n * m->size[l + 1], 8); hs[l + 1] = calloc(n * m->size[l + 1], 8); }
  forward(m, n, zs, hs);
  double *dz = calloc(n * m->size[L], 8);
  for (int i = 0; i < n * m->size[L]; i++) {
    double z = zs[L - 1][i], a = hs[L][i], t = y[i];
    if (m->bce) { loss += fmax(z, 0) - z * t + log1p(exp(-fabs(z))); dz[i] = (a - t) / n; }  /* BCE from z */
    else { loss += (a - t) * (a - t); dz[i] = 2 * (a - t) / n * df(m->act[L - 1], z, a); }
  }
  loss /= n;
  for (int l = L - 1; gw && l >= 0; l--) {
    int fi = m->size[l], fo = m->size[l + 1];
    for (int k = 0; k < fi; k++)
      for (int j = 0; j < fo; j++) {
        double s = 0;
        for (int r = 0; r < n; r++) s += hs[l][r * fi + k] * dz[r * fo + j];
        gw[l][k * fo + j] = s;
      }
    for (int j = 0; j < fo; j++) { double s = 0; for (int r = 0; r < n; r++) s += dz[r * fo + j]; gb[l][j] = s; }
    if (l) {  /* back through W[l] and the activation of layer l-1 */
      double *prev = calloc(n * fi, 8);
      for (int r = 0; r < n; r++)
        for (int k = 0; k < fi; k++) {
          double s = 0;
          for (int j = 0; j < fo; j++) s += dz[r * fo + j] * m->w[l][k * fo + j];
          prev[r * fi + k] = s * df(m->act[l - 1], zs[l - 1][r * fi + k], hs[l][r * fi + k]);
        }
      free(dz);
      dz = prev;
    }
  }
  free(dz);
  for (int l = 0; l < L; l++) { free(zs[l]); free(hs[l + 1]); }
  return loss;
}

static void update(Model *m, double *w, double *g, double *mm, double *vv, int count) {
  double sign = getenv("MLP_MUTANT") && !strcmp(getenv("MLP_MUTANT"), "sign") ? -1 : 1;
  for (int i = 0; i < count; i++) {
    if (m->opt == 2) {  /* Kingma & Ba: bias-corrected moments, epsilon outside the root */
      mm[i] = (1 - m->b1) * g[i] + m->b1 * mm[i];
      vv[i] = (1 - m->b2) * (g[i] * g[i]) + m->b2 * vv[i];
      double mh = mm[i] / (1 - pow(m->b1, m->t)), vh = vv[i] / (1 - pow(m->b2, m->t));
      w[i] -= sign * m->lr * (mh / (sqrt(vh) + m->eps));
    } else if (m->opt == 1) {  /* torch's form: v = mu*v + g; w -= lr*v */
      mm[i] = m->mu * mm[i] + g[i];
      w[i] -= sign * m->lr * mm[i];
    } else w[i] -= sign * m->lr * g[i];
  }
}

/* ---- answers ---- */
static void put_array(FILE *o, const double *a, int n) {
  fputc('[', o);
  for (int i = 0; i < n; i++) fprintf(o, "%s\"%.17g\"", i ? "," : "", a[i]);
  fputc(']', o);
}
static void put_params(FILE *o, Model *m) {
  fputc('[', o);
  for (int l = 0; l < m->nl; l++) {
    fprintf(o, "%s[[", l ? "," : "");
    for (int k = 0; k < m->size[l]; k++) { if (k) fputc(',', o); put_array(o, m->w[l] + k * m->size[l + 1], m->size[l + 1]); }
    fputs("],", o);
    put_array(o, m->b[l], m->size[l + 1]);
    fputc(']', o);
  }
  fputc(']', o);
}
static double *rows(J *j, int *n, int width) {  /* an (n, width) array of strings, row-major */
  *n = j ? j->n : 0;
  double *a = malloc((*n ? *n : 1) * width * 8);
  for (int r = 0; r < *n; r++) for (int c = 0; c < width; c++) a[r * width + c] = num(j->item[r]->item[c]);
  return a;
}

static Model *init(J *spec, J *params) {
  Model *m = calloc(1, sizeof *m);
  J *layers = get(spec, "layers"), *acts = get(spec, "activations"), *o = get(spec, "optimizer");
  m->nl = layers->n - 1;
  for (int i = 0; i < layers->n; i++) m->size[i] = (int)num(layers->item[i]);
  for (int l = 0; l < m->nl; l++)
    for (int a = 0; a < 4; a++) if (!strcmp(str(acts->item[l]), ACTS[a])) m->act[l] = a;
  m->bce = !strcmp(str(get(spec, "loss")), "bce");
  m->lr = num(get(o, "lr")), m->mu = num(get(o, "momentum")), m->b1 = num(get(o, "beta1"));
  m->b2 = num(get(o, "beta2")), m->eps = num(get(o, "epsilon"));
  m->opt = !strcmp(str(get(o, "name")), "adam") ? 2 : m->mu != 0 ? 1 : 0;
  J *bs = get(spec, "batch_size");
  m->batch = bs && bs->type == 'n' ? (int)bs->num : 0;  /* 0: full batch */
  for (int l = 0; l < m->nl; l++) {
    int fi = m->size[l], fo = m->size[l + 1];
    m->w[l] = malloc(fi * fo * 8); m->b[l] = malloc(fo * 8);
    m->mw[l] = calloc(fi * fo, 8); m->vw[l] = calloc(fi * fo, 8); m->mb[l] = calloc(fo, 8); m->vb[l] = calloc(fo, 8);
    J *W = params->item[l]->item[0], *b = params->item[l]->item[1];
    for (int k = 0; k < fi; k++) for (int j = 0; j < fo; j++) m->w[l][k * fo + j] = num(W->item[k]->item[j]);
    for (int j = 0; j < fo; j++) m->b[l][j] = num(b->item[j]);
  }
  return m;
}

static const char *answer(FILE *o, J *req) {  /* writes the fields after "ok":true; or returns an error */
  const char *op = str(get(req, "op"));
  if (!strcmp(op, "hello")) {
    fputs(",\"protocol\":2,\"name\":\"c-mlp\",\"language\":\"c99\",\"supports\":{\"dtypes\":[\"float64\"]},"
          "\"conventions\":{\"adam\":\"textbook\",\"momentum\":\"torch\",\"bce\":\"logits\"}", o);
    return NULL;
  }
  int id = (int)num(get(req, "model"));
  if (!strcmp(op, "init")) {
    if (strcmp(str(get(get(req, "spec"), "dtype")), "float64")) return "only float64";
    if (id >= nmodels) { models = realloc(models, (id + 1) * sizeof *models); memset(models + nmodels, 0, (id + 1 - nmodels) * sizeof *models); nmodels = id + 1; }
    models[id] = init(get(req, "spec"), get(req, "params"));
    return NULL;
  }
  Model *m = id >= 0 && id < nmodels ? models[id] : NULL;
  if (!m) return "no such model";
  int n, ny, L = m->nl, out = m->size[L];
  double *x = rows(get(req, "x"), &n, 2), *y = rows(get(req, "y"), &ny, out), *gw[MAXL], *gb[MAXL];
  for (int l = 0; l < L; l++) { gw[l] = malloc(m->size[l] * m->size[l + 1] * 8); gb[l] = malloc(m->size[l + 1] * 8); }
  const char *error = NULL;
  if (!strcmp(op, "forward")) {
    double *zs[MAXL], *hs[MAXL + 1];
    hs[0] = x;
    for (int l = 0; l < L; l++) { zs[l] = malloc(n * m->size[l + 1] * 8); hs[l + 1] = malloc(n * m->size[l + 1] * 8); }
    forward(m, n, zs, hs);
    fputs(",\"y\":[", o);
    for (int r = 0; r < n; r++) { if (r) fputc(',', o); put_array(o, hs[L] + r * out, out); }
    fputc(']', o);
    for (int l = 0; l < L; l++) { free(zs[l]); free(hs[l + 1]); }
  } else if (!strcmp(op, "loss")) {
    fprintf(o, ",\"loss\":\"%.17g\"", backprop(m, n, x, y, NULL, NULL));
  } else if (!strcmp(op, "gradients")) {
    backprop(m, n, x, y, gw, gb);
    fputs(",\"gradients\":[", o);
    for (int l = 0; l < L; l++) {
      fprintf(o, "%s[[", l ? "," : "");
      for (int k = 0; k < m->size[l]; k++) { if (k) fputc(',', o); put_array(o, gw[l] + k * m->size[l + 1], m->size[l + 1]); }
      fputs("],", o);
      put_array(o, gb[l], m->size[l + 1]);
      fputc(']', o);
    }
    fputc(']', o);
  } else if (!strcmp(op, "train")) {
    int steps = (int)num(get(req, "steps")), b = m->batch ? m->batch : n;
    J *ks = get(req, "checkpoints");
    double *losses = malloc((steps ? steps : 1) * 8), *bx = malloc(b * 2 * 8), *by = malloc(b * out * 8);
    char *saved = NULL;
    size_t savedlen = 0;
    FILE *s = open_memstream(&saved, &savedlen);
    int first = 1;
    for (int k = 0; k < steps; k++) {
      for (int i = 0; i < b; i++) {  /* update k of the model's life uses rows (k*b + i) mod n */
        int r = (int)((m->done * b + i) % n);
        memcpy(bx + i * 2, x + r * 2, 16); memcpy(by + i * out, y + r * out, out * 8);
      }
      losses[k] = backprop(m, b, bx, by, gw, gb);
      m->t++;
      for (int l = 0; l < L; l++) {
        update(m, m->w[l], gw[l], m->mw[l], m->vw[l], m->size[l] * m->size[l + 1]);
        update(m, m->b[l], gb[l], m->mb[l], m->vb[l], m->size[l + 1]);
      }
      m->done++;
      for (int c = 0; ks && c < ks->n; c++)
        if ((int)num(ks->item[c]) == k + 1) { fprintf(s, "%s\"%d\":", first ? "" : ",", k + 1); put_params(s, m); first = 0; }
    }
    fclose(s);
    fputs(",\"loss\":", o);
    put_array(o, losses, steps);
    fprintf(o, ",\"checkpoints\":{%s}", saved);
    free(saved); free(losses); free(bx); free(by);
  } else if (!strcmp(op, "params")) {
    fputs(",\"params\":", o);
    put_params(o, m);
  } else error = "unknown op";
  for (int l = 0; l < L; l++) { free(gw[l]); free(gb[l]); }
  free(x); free(y);
  return error;
}

int main(void) {
  char *line = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, stdin) > 0) {
    p = line;
    J *req = value();
    J *id = get(req, "id");
    char *body = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&body, &len);
    const char *error = answer(o, req);
    fclose(o);
    if (id) printf("{\"id\":%.0f,", num(id)); else printf("{\"id\":null,");
    if (error) printf("\"ok\":false,\"error\":\"%s\"}\n", error);
    else printf("\"ok\":true%s}\n", body);
    fflush(stdout);
    free(body);
    drop(req);
  }
  free(line);
  return 0;
}
