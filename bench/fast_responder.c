/* fast_responder.c — a stateless PUBLISH responder for measuring clients alone: answers every
 * datagram with a 200 OK from a template (inmem.h), on loopback, until SIGTERM or a lifetime. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "inmem.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
  (void)sig;
  stop = 1;
}

int main(int argc, char **argv)
{
  int port = argc > 1 ? atoi(argv[1]) : 0;
  double lifetime = argc > 2 ? atof(argv[2]) : 900; /* seconds: never runs for ever */
  static char buf[65536];
  static inmem m;

  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    perror("fast_responder: bind");
    return 1;
  }
  socklen_t sl = sizeof sa;
  getsockname(fd, (struct sockaddr *)&sa, &sl);
  struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sigaction act;
  memset(&act, 0, sizeof act);
  act.sa_handler = on_signal;
  sigaction(SIGTERM, &act, NULL);
  sigaction(SIGINT, &act, NULL);

  printf("listening 127.0.0.1:%d\n", ntohs(sa.sin_port));
  fflush(stdout);
  time_t end = time(NULL) + (time_t)lifetime;
  while (!stop && time(NULL) < end) {
    struct sockaddr_storage from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(fd, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &fl);
    if (n <= 0) continue;
    buf[n] = '\0';
    if (memcmp(buf, "SIP/2.0 ", 8) == 0) continue; /* a response: nothing to answer */
    m.req = buf;
    m.req_len = (size_t)n;
    size_t len;
    const char *r = inmem_reply(&m, 3600, &len);
    sendto(fd, r, len, 0, (struct sockaddr *)&from, fl);
  }
  close(fd);
  return 0;
}
