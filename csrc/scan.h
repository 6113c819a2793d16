/* scan.h — the fast path for reading responses: a strict scanner of a common subset, tried
 * before libosip2; whatever it declines is read by libosip2 as before. Internal to the core. */
#ifndef SIPUB_SCAN_H
#define SIPUB_SCAN_H

#include <stddef.h>

#include "message.h"

/* Reads the header section data[0..hdr_len) of a framed response (hdr_len counts the status
 * line, the header lines and the blank line that ends them). Returns 1 when the response lies
 * in the subset the scanner knows libosip2 reads the same way: status, reason, branch,
 * branch_ours, cseq, cseq_publish, call_id, etag, expires, min_expires and retry_after are set
 * (strings malloc'd, released by msg_response_clear); len, body_off, body_len and the
 * challenges are left alone. Returns 0 otherwise (or out of memory), out untouched. */
int msg_scan_response(const char *data, size_t hdr_len, msg_response *out);

/* msg_parse_response without the fast path: libosip2 alone. The reference the differential
 * fuzz target (fuzz/fuzz_scan.c) holds msg_parse_response to. */
int msg_parse_response_osip(const char *data, size_t len, msg_response *out);

#endif
