/* osip.c — the one libosip2 initialisation of the process, shared by the core and the test
 * compositor: parser tables built once, libosip2's own tracing silenced. */
#include "sipub.h"

#include <osipparser2/osip_parser.h>

void sipub_global_init(void)
{
  static int done; /* libosip2's parser tables: one-time and read-only afterwards */
  if (!done) {
    parser_init();
    /* libosip2 would print parse errors of hostile or broken datagrams to stderr: give
     * its tracer no output and no level (its trace state is process-wide). */
    osip_trace_initialize(TRACE_LEVEL0, NULL);
    for (int level = 0; level < END_TRACE_LEVEL; level++)
      osip_trace_disable_level((osip_trace_level_t)level);
    done = 1;
  }
}
