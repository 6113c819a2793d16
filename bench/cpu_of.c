/* cpu_of.c — runs a command and writes its wall time, CPU (user, system) and peak RSS to a
 * file: how the bench measures clients it does not own (SIPp) the same way as its own. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
  if (argc < 4) {
    fprintf(stderr, "usage: cpu_of OUTFILE LIMIT_S COMMAND [ARGS...]\n");
    return 2;
  }
  double limit = atof(argv[2]);
  double t0 = now_s();
  pid_t pid = fork();
  if (pid < 0) {
    perror("cpu_of: fork");
    return 1;
  }
  if (pid == 0) {
    execvp(argv[3], argv + 3);
    perror("cpu_of: exec");
    _exit(127);
  }
  int status = 0, killed = 0;
  struct rusage ru;
  for (;;) { /* poll so that a hung command is stopped after LIMIT_S */
    pid_t r = wait4(pid, &status, WNOHANG, &ru);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) {
      perror("cpu_of: wait4");
      return 1;
    }
    if (!killed && now_s() - t0 > limit) {
      kill(pid, SIGKILL);
      killed = 1;
    }
    usleep(2000);
  }
  double wall = now_s() - t0;
  double user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
  double sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  FILE *f = fopen(argv[1], "w");
  if (!f) {
    perror("cpu_of: output");
    return 1;
  }
  fprintf(f, "RESULT proc wall=%.6f user=%.6f sys=%.6f cpu=%.6f maxrss_kb=%ld exit=%d killed=%d\n",
          wall, user, sys, user + sys, ru.ru_maxrss, code, killed);
  fclose(f);
  return code;
}
