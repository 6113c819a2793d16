/* sofia_publish.c — the peer library: the same publication life (initial, refresh, modify,
 * remove) with Sofia-SIP's nua_publish/nua_unpublish, W in flight; or M idle publications. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

typedef struct app app;
typedef struct pubctx pubctx;
#define SU_ROOT_MAGIC_T app
#define NUA_MAGIC_T app
#define NUA_HMAGIC_T pubctx

#include <sofia-sip/nua.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/su_wait.h>

#define BODY1 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" \
  "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:bench@127.0.0.1\">\n" \
  "<tuple id=\"t1\"><status><basic>open</basic></status></tuple>\n</presence>\n"
#define BODY2 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" \
  "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:bench@127.0.0.1\">\n" \
  "<tuple id=\"t1\"><status><basic>closed</basic></status></tuple>\n</presence>\n"
#define CTYPE "application/pidf+xml"

struct pubctx {
  nua_handle_t *nh;
  int step;
};

struct app {
  su_root_t *root;
  nua_t *nua;
  int port, idle;
  long n, w, started, done, failed, published, tx;
  pubctx *pubs;
  double t1;
  int finished;
};

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static long rss_bytes(void)
{
  long size = 0, res = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &size, &res) != 2) res = 0;
    fclose(f);
  }
  return res * sysconf(_SC_PAGESIZE);
}

static void finish(app *a)
{
  if (a->finished) return;
  a->finished = 1;
  a->t1 = now_s();
  su_root_break(a->root);
}

static void start_one(app *a)
{
  pubctx *p = &a->pubs[a->started++];
  char uri[96];
  snprintf(uri, sizeof uri, "sip:f%ld@127.0.0.1:%d", a->started, a->port);
  p->step = 0;
  p->nh = nua_handle(a->nua, p, NUTAG_URL(uri), SIPTAG_TO_STR(uri), TAG_END());
  nua_publish(p->nh, SIPTAG_EVENT_STR("presence"), SIPTAG_CONTENT_TYPE_STR(CTYPE),
              SIPTAG_PAYLOAD_STR(BODY1), SIPTAG_EXPIRES_STR("3600"), TAG_END());
}

static void one_done(app *a, pubctx *p)
{
  nua_handle_destroy(p->nh);
  p->nh = NULL;
  a->done++;
  if (a->started < a->n) start_one(a);
  else if (a->done == a->n) finish(a);
}

static void on_event(nua_event_t event, int status, char const *phrase, nua_t *nua, app *a,
                     nua_handle_t *nh, pubctx *p, sip_t const *sip, tagi_t tags[])
{
  (void)phrase, (void)nua, (void)nh, (void)sip, (void)tags;
  if (!p || status < 200) return;
  if (event == nua_r_publish) {
    a->tx++;
    if (status >= 300) {
      a->failed++;
      one_done(a, p);
      return;
    }
    a->published++;
    p->step++;
    if (a->idle) {
      a->done++;
      if (a->started < a->n) start_one(a);
      else if (a->done == a->n) finish(a);
    } else if (p->step == 1) {
      /* refresh: no body; Sofia adds SIP-If-Match. Event and Expires are not remembered by
       * the handle, so every request names them again. */
      nua_publish(nh, SIPTAG_EVENT_STR("presence"), SIPTAG_EXPIRES_STR("3600"), TAG_END());
    } else if (p->step == 2) {
      nua_publish(nh, SIPTAG_EVENT_STR("presence"), SIPTAG_EXPIRES_STR("3600"),
                  SIPTAG_CONTENT_TYPE_STR(CTYPE), SIPTAG_PAYLOAD_STR(BODY2), TAG_END());
    } else {
      nua_unpublish(nh, SIPTAG_EVENT_STR("presence"), TAG_END());
    }
  } else if (event == nua_r_unpublish) {
    a->tx++;
    if (status >= 300) a->failed++;
    one_done(a, p);
  }
}

static void on_limit(app *a, su_timer_t *t, su_timer_arg_t *arg)
{
  (void)t, (void)arg;
  fprintf(stderr, "sofia_publish: time limit reached, stopping\n");
  finish(a);
}

int main(int argc, char **argv)
{
  if (argc < 4) {
    fprintf(stderr, "usage: sofia_publish PORT N W [idle] [LIMIT_S]\n");
    return 2;
  }
  app a;
  memset(&a, 0, sizeof a);
  a.port = atoi(argv[1]);
  a.n = atol(argv[2]);
  a.w = atol(argv[3]);
  a.idle = argc > 4 && strcmp(argv[4], "idle") == 0;
  double limit = argc > 5 ? atof(argv[5]) : 120;
  a.pubs = calloc((size_t)a.n, sizeof *a.pubs);
  if (!a.pubs) return 1;

  su_init();
  a.root = su_root_create(&a);
  su_root_threading(a.root, 0); /* the stack in this thread: one thread, as ours */
  a.nua = nua_create(a.root, on_event, &a, NUTAG_URL("sip:127.0.0.1:0;transport=udp"),
                     SIPTAG_FROM_STR("sip:bench@127.0.0.1"), SIPTAG_USER_AGENT_STR("sofia-bench"),
                     TAG_END());
  if (!a.nua) {
    fprintf(stderr, "sofia_publish: nua_create failed\n");
    return 1;
  }
  su_timer_t *guard = su_timer_create(su_root_task(a.root), (su_duration_t)(limit * 1000));
  su_timer_set(guard, on_limit, NULL);

  long rss0 = rss_bytes();
  double t0 = now_s(), c0 = cpu_s();
  for (long i = 0; i < a.w && i < a.n; i++) start_one(&a);
  su_root_run(a.root);
  double elapsed = a.t1 - t0, cpu = cpu_s() - c0;
  long rss1 = rss_bytes();
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);

  if (a.idle) {
    printf("RESULT sofia_idle n=%ld published=%ld failed=%ld rss_delta=%ld per_pub=%.1f maxrss_kb=%ld\n",
           a.n, a.published, a.failed, rss1 - rss0, (double)(rss1 - rss0) / (double)a.n, ru.ru_maxrss);
  } else {
    printf("RESULT sofia cpu=%.6g cpu_per_1k=%.6g done=%ld elapsed=%.6g failed=%ld maxrss_kb=%ld n=%ld "
           "tps=%.6g tx=%ld w=%ld\n",
           cpu, a.tx ? cpu / (double)a.tx * 1000 : 0, a.done, elapsed, a.failed, ru.ru_maxrss, a.n,
           (double)a.tx / elapsed, a.tx, a.w);
  }
  fflush(stdout);
  /* exit without tearing the stack down: nua_shutdown would unpublish the idle ones */
  _exit(a.done == a.n && a.failed == 0 ? 0 : 1);
}
