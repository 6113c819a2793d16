/* compositor_main.c — `sip-compositor`, the test compositor as a program: listens on a
 * loopback UDP port, answers PUBLISH per RFC 3903, optionally scripted per request number. */
#include "sipub_compositor.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct script_entry {
  unsigned long number;
  sipub_compositor_action act;
} script_entry;

typedef struct app {
  sipub_compositor *c;
  uv_signal_t sigint, sigterm;
  script_entry *script;
  size_t nscript;
  int verbose;
} app;

static void usage(void)
{
  fprintf(stderr,
          "usage: sip-compositor [--listen HOST:PORT] [--min-expires N] [--max-expires N]\n"
          "                      [--default-expires N] [--events a,b] [--script SPEC]\n"
          "                      [--verbose|--quiet] [--any-address]\n"
          "SPEC: comma-separated N=ACTION for the Nth PUBLISH received, ACTION one of\n"
          "  CODE[:Header=value[:Header=value...]]   answer CODE with those headers\n"
          "  drop                                    stay silent (retransmissions too)\n"
          "  delay:SECONDS                           process normally, answer later\n"
          "e.g. --script \"2=412,3=drop,4=423:Min-Expires=1800,5=delay:0.5\"\n");
  exit(2);
}

/* Parses one N=ACTION item. */
static int parse_item(char *item, script_entry *e)
{
  memset(e, 0, sizeof *e);
  char *eq = strchr(item, '=');
  if (!eq) return -1;
  *eq = '\0';
  e->number = strtoul(item, NULL, 10);
  char *action = eq + 1;
  if (!e->number) return -1;
  if (strcmp(action, "drop") == 0) {
    e->act.drop = 1;
    return 0;
  }
  if (strncmp(action, "delay:", 6) == 0) {
    e->act.delay = atof(action + 6);
    return e->act.delay > 0 ? 0 : -1;
  }
  char *save = NULL;
  char *tok = strtok_r(action, ":", &save);
  e->act.code = tok ? atoi(tok) : 0;
  if (e->act.code < 100 || e->act.code > 699) return -1;
  size_t n = 0;
  while ((tok = strtok_r(NULL, ":", &save))) {
    char *heq = strchr(tok, '=');
    if (!heq) return -1;
    *heq = '\0';
    n += (size_t)snprintf(e->act.headers + n, n < sizeof e->act.headers ? sizeof e->act.headers - n : 0,
                          "%s: %s\r\n", tok, heq + 1);
  }
  return 0;
}

static void hook(void *ud, const sipub_compositor_request *r, sipub_compositor_action *act)
{
  app *a = ud;
  for (size_t i = 0; i < a->nscript; i++)
    if (a->script[i].number == r->number) *act = a->script[i].act;
}

/* --verbose: one line per request received, with what it got. */
static void log_line(void *ud, const sipub_compositor_outcome *o)
{
  char num[24] = "-", req_exp[24] = "-", answer[160];
  if (o->number) snprintf(num, sizeof num, "#%lu", o->number);
  if (o->expires >= 0) snprintf(req_exp, sizeof req_exp, "%ld", o->expires);
  else if (o->expires == -2) snprintf(req_exp, sizeof req_exp, "invalid");
  if (!o->code) snprintf(answer, sizeof answer, "%s", o->retransmission ? "no answer" : "drop");
  else snprintf(answer, sizeof answer, "%d", o->code);
  printf("%s %s %s event=%s if-match=%s expires=%s -> %s", num, o->method, o->uri,
         o->event ? o->event : "-", o->if_match ? o->if_match : "-", req_exp, answer);
  if (o->etag) printf(" etag=%s", o->etag);
  if (o->granted >= 0) printf(" expires=%ld", o->granted);
  if (o->delay > 0) printf(" after %gs", o->delay);
  if (o->retransmission) printf(" (retransmission)");
  printf("\n");
  fflush(stdout);
}

static void on_signal(uv_signal_t *s, int signum)
{
  app *a = s->data;
  sipub_compositor_close(a->c);
  uv_close((uv_handle_t *)&a->sigint, NULL);
  uv_close((uv_handle_t *)&a->sigterm, NULL);
}

int main(int argc, char **argv)
{
  app a;
  memset(&a, 0, sizeof a);
  sipub_compositor_opts o;
  memset(&o, 0, sizeof o);
  char host[64] = "127.0.0.1";
  char *events[33] = { NULL };
  char *events_arg = NULL, *script_arg = NULL; /* strtok_r'd copies, freed at exit */
  o.port = 5070;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(arg, "--listen") == 0 && val) {
      const char *colon = strrchr(val, ':');
      if (!colon || (size_t)(colon - val) >= sizeof host) usage();
      memcpy(host, val, (size_t)(colon - val));
      host[colon - val] = '\0';
      o.port = atoi(colon + 1);
      i++;
    } else if (strcmp(arg, "--min-expires") == 0 && val) {
      o.min_expires = atoi(val), i++;
    } else if (strcmp(arg, "--max-expires") == 0 && val) {
      o.max_expires = atoi(val), i++;
    } else if (strcmp(arg, "--default-expires") == 0 && val) {
      o.default_expires = atoi(val), i++;
    } else if (strcmp(arg, "--events") == 0 && val) {
      char *copy = events_arg = strdup(val), *save = NULL;
      size_t n = 0;
      for (char *t = strtok_r(copy, ",", &save); t && n < 32; t = strtok_r(NULL, ",", &save)) events[n++] = t;
      o.events = (const char *const *)events;
      i++;
    } else if (strcmp(arg, "--script") == 0 && val) {
      char *copy = script_arg = strdup(val), *save = NULL;
      for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        a.script = realloc(a.script, (a.nscript + 1) * sizeof *a.script);
        if (!a.script || parse_item(t, &a.script[a.nscript]) != 0) usage();
        a.nscript++;
      }
      i++;
    } else if (strcmp(arg, "--verbose") == 0) {
      a.verbose = 1;
    } else if (strcmp(arg, "--quiet") == 0) {
      a.verbose = 0;
    } else if (strcmp(arg, "--any-address") == 0) {
      o.any_address = 1;
    } else {
      usage();
    }
  }
  o.host = host;
  uv_loop_t *loop = uv_default_loop();
  int err = 0;
  a.c = sipub_compositor_new(loop, &o, &err);
  if (!a.c) {
    fprintf(stderr, "sip-compositor: cannot listen on %s:%d: %s\n", host, o.port,
            err == UV_EINVAL ? "not a loopback address (--any-address allows it)" : uv_strerror(err));
    return 1;
  }
  sipub_compositor_set_hook(a.c, hook, &a);
  if (a.verbose) sipub_compositor_set_log(a.c, log_line, &a);
  uv_signal_init(loop, &a.sigint);
  uv_signal_init(loop, &a.sigterm);
  a.sigint.data = a.sigterm.data = &a;
  uv_signal_start(&a.sigint, on_signal, SIGINT);
  uv_signal_start(&a.sigterm, on_signal, SIGTERM);
  printf("listening %s:%d\n", host, sipub_compositor_port(a.c));
  fflush(stdout);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  free(a.script);
  free(events_arg);
  free(script_arg);
  return 0;
}
