/* stall.c — the core after a loop stall (issue 13 #4), driven as a driver would drive it:
 * sipub_ua_tick with a clock that jumped past several deadlines. Prints one "ok"/"FAIL" line
 * per check (spec/unit/stall_spec.lua compiles and runs it). */
#include <stdio.h>
#include <string.h>

#include "sipub.h"

static int sends, fails;
static char last[4096];
static size_t last_len;

static int on_send(void *ud, const sipub_dest *d, const char *data, size_t len)
{
  (void)ud;
  (void)d;
  sends++;
  last_len = len < sizeof last - 1 ? len : sizeof last - 1;
  memcpy(last, data, last_len);
  last[last_len] = '\0';
  return 0;
}

static void check(int cond, const char *what)
{
  printf("%s %s\n", cond ? "ok" : "FAIL", what);
  if (!cond) fails++;
}

/* Copies header `name` ("\r\nVia:") of the last request, value included, into out. */
static void copy_header(char *out, size_t cap, const char *name, const char *suffix)
{
  const char *p = strstr(last, name);
  size_t n = p ? strcspn(p + 2, "\r") : 0;
  size_t at = strlen(out);
  if (p && at + n + 40 < cap) {
    memcpy(out + at, p + 2, n);
    out[at + n] = '\0';
    strcat(out, suffix);
    strcat(out, "\r\n");
  }
}

static size_t ok_to_last(char *out, size_t cap)
{
  strcpy(out, "SIP/2.0 200 OK\r\n");
  copy_header(out, cap, "\r\nVia:", "");
  copy_header(out, cap, "\r\nFrom:", "");
  copy_header(out, cap, "\r\nTo:", ";tag=t1");
  copy_header(out, cap, "\r\nCall-ID:", "");
  copy_header(out, cap, "\r\nCSeq:", "");
  strcat(out, "SIP-ETag: e1\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n");
  return strlen(out);
}

/* Events since the last call that carry cause (NULL: any). */
static int events(sipub_ua *ua, const char *cause)
{
  sipub_event ev;
  int n = 0;
  while (sipub_ua_poll(ua, &ev))
    if (!cause || (ev.cause && strcmp(ev.cause, cause) == 0)) n++;
  return n;
}

int main(void)
{
  sipub_io io = { NULL, on_send, NULL };
  sipub_config cfg = { .aor = "sip:a@127.0.0.1", .proxy_host = "127.0.0.1", .via_host = "127.0.0.1",
                       .via_port = 5062, .seed = 3 };
  sipub_ua *ua = sipub_ua_new(&cfg, &io, 1000);
  sipub_pub_config pc = { .target = "sip:u@127.0.0.1", .event = "presence", .expires = 3600 };
  sipub_pub *p = sipub_pub_new(ua, &pc, NULL, NULL);
  if (!ua || !p) return 2;

  /* An initial PUBLISH unanswered, then a 5 s stall: Timer E at 1.5, 2.5, 4.5 s was missed. */
  sipub_pub_publish(p, "x", 1);
  check(sends == 1, "the initial is sent");
  sends = 0;
  sipub_ua_tick(ua, 6000);
  check(sends == 1, "after a 5 s stall, one retransmission, not a burst");
  sends = 0;
  sipub_ua_tick(ua, 6999);
  check(sends == 0, "the next one is re-spaced from the real send (no copy before 7 s)");
  sipub_ua_tick(ua, 7000);
  check(sends == 1, "the next one at 7 s (1 s after the real send)");
  char resp[4096];
  size_t n = ok_to_last(resp, sizeof resp);
  sipub_ua_receive(ua, 7000, NULL, resp, n);
  check(events(ua, NULL) == 1 && sipub_pub_etag(p) && strcmp(sipub_pub_etag(p), "e1") == 0, "published");

  /* The refresh is due at 1 s + 3240 s; the loop stalls 5 s past it. */
  uint64_t due = 1000 + 3240000, late = due + 5000;
  sends = 0;
  sipub_ua_tick(ua, late);
  check(sends == 1, "the late refresh leaves once, without its missed retransmissions");
  sends = 0;
  sipub_ua_tick(ua, late + 499);
  check(sends == 0, "its first retransmission is 500 ms after the real send, not before");
  sipub_ua_tick(ua, late + 500);
  check(sends == 1, "and at 500 ms it is sent");
  for (uint64_t t = late + 500; t < late + 31999; t += 250) sipub_ua_tick(ua, t);
  sipub_ua_tick(ua, late + 31999);
  check(events(ua, "Request Timeout") == 0, "no Timer F before 32 s after the real send");
  sipub_ua_tick(ua, late + 32000);
  check(events(ua, "Request Timeout") == 1, "Timer F 32 s after the real send");
  sipub_ua_free(ua);
  return fails ? 1 : 0;
}
