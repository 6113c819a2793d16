/* scan.h — the fast path for reading responses: a strict scanner of a common subset, tried
 * before libosip2; whatever it declines is read by libosip2 as before. Internal to the core. */
#ifndef SIPUB_SCAN_H
#define SIPUB_SCAN_H

#include <stddef.h>

#include "message.h"

/* Reads a response datagram (len bytes). Returns 1 when it lies in the subset the scanner
 * knows libosip2 reads the same way: out is filled as msg_parse_response fills it (strings
 * malloc'd, released by msg_response_clear; the framing, len, body_off and body_len, as
 * msg_parse_response computes it; no challenge). Returns 0 otherwise (or out of memory),
 * out untouched. */
int msg_scan_response(const char *data, size_t len, msg_response *out);

/* msg_parse_response without the fast path: libosip2 alone. The reference the differential
 * fuzz target (fuzz/fuzz_scan.c) holds msg_parse_response to. */
int msg_parse_response_osip(const char *data, size_t len, msg_response *out);

#endif
