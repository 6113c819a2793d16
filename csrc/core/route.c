/* route.c — where a publication's requests go: the outbound proxy, else the host and port of
 * its target URI. */
#include "core.h"

#include <stdlib.h>
#include <string.h>

#include <osipparser2/osip_parser.h>

/* The transport a URI asks for: its transport parameter, TLS for sips: (every hop of a SIPS
 * request is TLS, RFC 3261 §26.2.2), else dflt. */
static sipub_transport uri_transport(osip_uri_t *u, sipub_transport dflt)
{
  if (u->scheme && osip_strcasecmp(u->scheme, "sips") == 0) return SIPUB_TP_TLS;
  osip_uri_param_t *tp = NULL;
  if (osip_uri_uparam_get_byname(u, "transport", &tp) == 0 && tp && tp->gvalue) {
    if (osip_strcasecmp(tp->gvalue, "tcp") == 0) return SIPUB_TP_TCP;
    if (osip_strcasecmp(tp->gvalue, "tls") == 0) return SIPUB_TP_TLS;
  }
  return dflt;
}

int route_set_dest(sipub_pub *p, osip_uri_t *u)
{
  sipub_ua *ua = p->ua;
  p->dest_tp = uri_transport(u, ua->transport);
  if (ua->proxy_host) {
    if (p->dest_tp != SIPUB_TP_TLS) p->dest_tp = ua->transport;
    p->dest_host = strdup(ua->proxy_host);
    p->dest_port = ua->proxy_port;
  } else {
    p->dest_host = strdup(u->host);
    p->dest_port = u->port ? atoi(u->port) : p->dest_tp == SIPUB_TP_TLS ? 5061 : 5060;
  }
  return p->dest_host ? 0 : SIPUB_ENOMEM;
}
