/* raw_echo.c — the trivial UDP responder of the raw benchmark: answers every datagram with one
 * of a fixed size (a 200 OK's), on loopback, until SIGTERM/SIGINT or a lifetime runs out. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
  (void)sig;
  stop = 1;
}

int main(int argc, char **argv)
{
  int port = argc > 1 ? atoi(argv[1]) : 0;
  size_t reply_len = argc > 2 ? (size_t)atoi(argv[2]) : 400;
  double lifetime = argc > 3 ? atof(argv[3]) : 600; /* seconds: never runs for ever */
  static char buf[65536], reply[65536];
  if (reply_len > sizeof reply) reply_len = sizeof reply;
  memset(reply, 'x', reply_len);

  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    perror("raw_echo: bind");
    return 1;
  }
  socklen_t sl = sizeof sa;
  getsockname(fd, (struct sockaddr *)&sa, &sl);
  struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

  struct sigaction act;
  memset(&act, 0, sizeof act);
  act.sa_handler = on_signal; /* no SA_RESTART: recvfrom returns EINTR */
  sigaction(SIGTERM, &act, NULL);
  sigaction(SIGINT, &act, NULL);

  printf("listening 127.0.0.1:%d\n", ntohs(sa.sin_port));
  fflush(stdout);
  time_t end = time(NULL) + (time_t)lifetime;
  while (!stop && time(NULL) < end) {
    struct sockaddr_storage from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    if (n <= 0) continue;
    sendto(fd, reply, reply_len, 0, (struct sockaddr *)&from, fl);
  }
  close(fd);
  return 0;
}
