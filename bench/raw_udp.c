/* raw_udp.c — the physical limit: a client keeping W PUBLISH-sized datagrams in flight against
 * raw_echo on loopback, one recvfrom/sendto per datagram; prints round trips/s and CPU. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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

int main(int argc, char **argv)
{
  if (argc < 3) {
    fprintf(stderr, "usage: raw_udp PORT ROUND_TRIPS [WINDOW [SIZE [LIMIT_S]]]\n");
    return 2;
  }
  int port = atoi(argv[1]);
  long total = atol(argv[2]);
  long window = argc > 3 ? atol(argv[3]) : 64;
  size_t size = argc > 4 ? (size_t)atol(argv[4]) : 560;
  double limit = argc > 5 ? atof(argv[5]) : 120;
  static char req[65536], buf[65536];
  if (size > sizeof req) size = sizeof req;
  memset(req, 'p', size);
  if (window > total) window = total;

  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in me = { .sin_family = AF_INET }, to = { .sin_family = AF_INET };
  inet_pton(AF_INET, "127.0.0.1", &me.sin_addr);
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  to.sin_port = htons((uint16_t)port);
  if (fd < 0 || bind(fd, (struct sockaddr *)&me, sizeof me) != 0) {
    perror("raw_udp: bind");
    return 1;
  }
  struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

  long sent = 0, received = 0, resent = 0;
  double t0 = now_s(), c0 = cpu_s();
  for (; sent < window; sent++) sendto(fd, req, size, 0, (struct sockaddr *)&to, sizeof to);
  while (received < total && now_s() - t0 < limit) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      /* a datagram was lost: put the window back (counted, should stay 0) */
      long missing = sent - received;
      for (long i = 0; i < missing; i++) sendto(fd, req, size, 0, (struct sockaddr *)&to, sizeof to);
      resent += missing;
      continue;
    }
    if (n <= 0) continue;
    received++;
    if (sent < total) {
      sendto(fd, req, size, 0, (struct sockaddr *)&to, sizeof to);
      sent++;
    }
  }
  double elapsed = now_s() - t0, cpu = cpu_s() - c0;
  printf("RESULT raw cpu=%.6g cpu_per_1k=%.6g elapsed=%.6g n=%ld resent=%ld tps=%.6g tx=%ld w=%ld\n",
         cpu, received ? cpu / (double)received * 1000 : 0, elapsed, total, resent,
         (double)received / elapsed, received, window);
  close(fd);
  return received == total ? 0 : 1;
}
