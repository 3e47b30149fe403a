/*
 * api_info.c - /api/v1/info, /api/v1/webui, /livez and /readyz, /api/v1/openapi.
 */
#include "mailsink/http/internal.h"

void
api_info(http_req *r)
{
    /* not written yet */
    evhttp_send_error(r->req, 501, "not implemented");
}

void
api_webui(http_req *r)
{
    /* not written yet */
    evhttp_send_error(r->req, 501, "not implemented");
}

void
api_health(http_req *r)
{
    /* not written yet */
    evhttp_send_error(r->req, 501, "not implemented");
}

void
api_openapi(http_req *r)
{
    /* not written yet */
    evhttp_send_error(r->req, 501, "not implemented");
}
