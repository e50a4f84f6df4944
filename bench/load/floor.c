// A fixed slice of CPU work (an LCG, no memory traffic, no syscalls) timed N times: what this machine alone does to
// the percentiles of identical work. Prints: n p50 p90 p99 p99.9 max in microseconds.
// Build: cc -O1 -o floor bench/load/floor.c     Run: floor ITERATIONS [N]
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "us-clock.h"

volatile int sink;

int main(int argc, char **argv) {
  int iters = argc > 1 ? atoi(argv[1]) : 6000;
  int n = argc > 2 ? atoi(argv[2]) : 100000;
  double *d = malloc(n * sizeof(double));
  for (int k = 0; k < n / 5; k++)
    for (int i = 0; i < iters; i++) sink = sink * 1103515245 + 12345;
  for (int k = 0; k < n; k++) {
    double t = now_us();
    for (int i = 0; i < iters; i++) sink = sink * 1103515245 + 12345;
    d[k] = now_us() - t;
  }
  qsort(d, n, sizeof(double), cmp_double);
  printf("%d %.1f %.1f %.1f %.1f %.1f\n", n, d[n / 2], d[n * 9 / 10], d[n * 99 / 100], d[n * 999 / 1000], d[n - 1]);
  return 0;
}
