/* cluster_view.c: the pods of GET /cluster, their slots and the total, as JSON and HTML. */
#include "cluster_view.h"

#include "respond.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct named_slot {
    char pod[SLOT_POD_MAX + 1];
    struct cluster_slot slot;
};

static int named_cmp(const void *a, const void *b)
{
    const struct named_slot *x = a, *y = b;
    int c = strcmp(x->pod, y->pod);
    return c != 0 ? c : strcmp(x->slot.volume, y->slot.volume);
}

static const struct exchange_pod *find_pod(const struct exchange_view *ex, const char *pod)
{
    for (size_t i = 0; i < ex->npods; i++)
        if (strcmp(ex->pods[i].pod, pod) == 0)
            return &ex->pods[i];
    return NULL;
}

static void add_slot(struct named_slot *ns, const char *id, uint64_t value)
{
    char why[200];
    if (slot_id_parse(id, strlen(id), ns->pod, ns->slot.volume, why, sizeof(why)) != 0)
        snprintf(ns->pod, sizeof(ns->pod), "?"); /* ids in the table were checked */
    ns->slot.visits = value;
}

int cluster_view_build(struct cluster_view *v, const char *pod, const char *own_id,
                       uint64_t own_value, const struct slotmap *replicas,
                       const struct exchange_view *ex, uint64_t now_ms)
{
    memset(v, 0, sizeof(*v));
    v->pod = pod;
    v->own_id = own_id;
    v->ex = ex;
    v->now_ms = now_ms;
    v->round_age_ms = ex->last_round_ms != 0 ? (int64_t)(now_ms - ex->last_round_ms) : -1;
    size_t n = replicas->n + 1;
    struct named_slot *all = malloc(n * sizeof(*all));
    v->slot_store = malloc(n * sizeof(*v->slot_store));
    v->pods = malloc(n * sizeof(*v->pods));
    if (all == NULL || v->slot_store == NULL || v->pods == NULL) {
        free(all);
        cluster_view_free(v);
        return -ENOMEM;
    }
    add_slot(&all[0], own_id, own_value);
    for (size_t i = 0; i < replicas->n; i++)
        add_slot(&all[i + 1], replicas->s[i].id, replicas->s[i].value);
    char own_pod[SLOT_POD_MAX + 1]; /* the own slot's pod: the volume's first pod */
    memcpy(own_pod, all[0].pod, sizeof(own_pod));
    qsort(all, n, sizeof(*all), named_cmp);
    v->nslots = n;
    for (size_t i = 0; i < n; i++) {
        v->slot_store[i] = all[i].slot;
        struct cluster_pod *p = v->npods != 0 ? &v->pods[v->npods - 1] : NULL;
        if (p == NULL || strcmp(p->pod, all[i].pod) != 0) {
            p = &v->pods[v->npods++];
            memset(p, 0, sizeof(*p));
            memcpy(p->pod, all[i].pod, sizeof(p->pod));
            p->slots = &v->slot_store[i];
            p->self = strcmp(p->pod, own_pod) == 0;
            const struct exchange_pod *seen = find_pod(ex, p->pod);
            p->answered = p->self || (seen != NULL && seen->answered);
            p->age_ms = p->self ? 0
                        : seen != NULL && seen->last_ok_ms != 0
                            ? (int64_t)(now_ms - seen->last_ok_ms)
                            : -1;
        }
        p->nslots++;
        uint64_t x = all[i].slot.visits;
        p->visits = x > UINT64_MAX - p->visits ? UINT64_MAX : p->visits + x;
        if (x > UINT64_MAX - v->total) {
            v->total = UINT64_MAX;
            v->saturated = 1;
        } else {
            v->total += x;
        }
    }
    free(all);
    return 0;
}

void cluster_view_free(struct cluster_view *v)
{
    free(v->pods);
    free(v->slot_store);
    v->pods = NULL;
    v->slot_store = NULL;
    v->npods = v->nslots = 0;
}

static void json_str(struct strbuf *sb, const char *s)
{
    strbuf_lit(sb, "\"");
    strbuf_json(sb, s, strlen(s));
    strbuf_lit(sb, "\"");
}

static void seconds(struct strbuf *sb, int64_t ms)
{
    if (ms < 0)
        strbuf_lit(sb, "null");
    else
        strbuf_printf(sb, "%lld.%03lld", (long long)(ms / 1000), (long long)(ms % 1000));
}

void cluster_view_json(struct strbuf *sb, const struct cluster_view *v)
{
    strbuf_lit(sb, "{\"total\":");
    strbuf_u64(sb, v->total);
    if (v->saturated)
        strbuf_lit(sb, ",\"saturated\":true");
    strbuf_lit(sb, ",\"pod\":");
    json_str(sb, v->pod);
    strbuf_lit(sb, ",\"slot\":");
    json_str(sb, v->own_id);
    strbuf_lit(sb, ",\"slots\":");
    strbuf_u64(sb, v->nslots);
    strbuf_lit(sb, ",\"last_exchange_age_seconds\":");
    seconds(sb, v->round_age_ms);
    strbuf_lit(sb, ",\"pods\":[");
    for (size_t i = 0; i < v->npods; i++) {
        const struct cluster_pod *p = &v->pods[i];
        strbuf_puts(sb, i == 0 ? "{\"pod\":" : ",{\"pod\":");
        json_str(sb, p->pod);
        strbuf_lit(sb, ",\"visits\":");
        strbuf_u64(sb, p->visits);
        strbuf_puts(sb, p->answered ? ",\"answered\":true" : ",\"answered\":false");
        strbuf_lit(sb, ",\"age_seconds\":");
        seconds(sb, p->age_ms);
        strbuf_lit(sb, ",\"slots\":[");
        for (size_t j = 0; j < p->nslots; j++) {
            strbuf_puts(sb, j == 0 ? "{\"volume\":\"" : ",{\"volume\":\"");
            strbuf_puts(sb, p->slots[j].volume);
            strbuf_lit(sb, "\",\"visits\":");
            strbuf_u64(sb, p->slots[j].visits);
            strbuf_lit(sb, "}");
        }
        strbuf_lit(sb, "]}");
    }
    strbuf_lit(sb, "],\"peers\":[");
    for (size_t i = 0; i < v->ex->npeers; i++) {
        const struct exchange_peer *p = &v->ex->peers[i];
        strbuf_puts(sb, i == 0 ? "{\"address\":" : ",{\"address\":");
        json_str(sb, p->address);
        strbuf_lit(sb, ",\"pod\":");
        if (p->pod[0] != '\0')
            json_str(sb, p->pod);
        else
            strbuf_lit(sb, "null");
        strbuf_puts(sb, p->ok ? ",\"ok\":true" : ",\"ok\":false");
        strbuf_lit(sb, ",\"age_seconds\":");
        seconds(sb, p->last_ok_ms != 0 ? (int64_t)(v->now_ms - p->last_ok_ms) : -1);
        if (!p->ok) {
            strbuf_lit(sb, ",\"error\":");
            json_str(sb, p->error);
        }
        strbuf_lit(sb, "}");
    }
    strbuf_lit(sb, "]}\n");
}

static void html_text(struct strbuf *sb, const char *s)
{
    strbuf_html(sb, s, strlen(s));
}

static void html_age(struct strbuf *sb, int64_t ms)
{
    if (ms < 60000)
        strbuf_printf(sb, "%lld.%01lld s", (long long)(ms / 1000), (long long)(ms % 1000 / 100));
    else if (ms < 3600000)
        strbuf_printf(sb, "%lld min", (long long)(ms / 60000));
    else
        strbuf_printf(sb, "%lld h", (long long)(ms / 3600000));
}

void cluster_view_html(struct strbuf *sb, const struct cluster_view *v)
{
    uint64_t max = 0;
    size_t stale = 0;
    for (size_t i = 0; i < v->npods; i++) {
        if (v->pods[i].visits > max)
            max = v->pods[i].visits;
        stale += !v->pods[i].answered;
    }
    respond_page_head(sb, "Cluster: ", v->total, " visits");
    strbuf_lit(sb, "<h1>Cluster total: ");
    strbuf_u64(sb, v->total);
    strbuf_lit(sb, " visits</h1>\n<p>");
    strbuf_u64(sb, v->npods);
    strbuf_puts(sb, v->npods == 1 ? " pod, " : " pods, ");
    strbuf_u64(sb, v->nslots);
    strbuf_puts(sb, v->nslots == 1 ? " slot" : " slots");
    strbuf_lit(sb, " as pod <strong>");
    html_text(sb, v->pod);
    strbuf_lit(sb, "</strong> holds them; ");
    if (v->round_age_ms < 0) {
        strbuf_lit(sb, "no exchange with the peers yet.");
    } else {
        strbuf_lit(sb, "last exchange with the peers ");
        html_age(sb, v->round_age_ms);
        strbuf_lit(sb, " ago.");
    }
    if (stale != 0) {
        strbuf_lit(sb, " <strong>");
        strbuf_u64(sb, stale);
        strbuf_puts(sb, stale == 1 ? " pod is stale" : " pods are stale");
        strbuf_lit(sb, "</strong>: its count is the last one received (it never goes down).");
    }
    strbuf_lit(sb, "</p>\n<div class=\"pods\" role=\"list\">\n");
    for (size_t i = 0; i < v->npods; i++) {
        const struct cluster_pod *p = &v->pods[i];
        double width = max != 0 ? 100.0 * (double)p->visits / (double)max : 0;
        strbuf_lit(sb, "<div class=\"pod\" role=\"listitem\" style=\"display:flex;"
                       "align-items:center;gap:0.5em;margin:0.3em 0\"><span class=\"name\" "
                       "style=\"flex:0 0 12em;overflow-wrap:anywhere\">");
        html_text(sb, p->pod);
        strbuf_lit(sb, "</span><span class=\"track\" style=\"flex:0 0 40%;background:#eee\">"
                       "<span class=\"bar\" style=\"display:block;height:1.2em;width:");
        strbuf_printf(sb, "%.1f", width);
        strbuf_puts(sb, p->answered ? "%;background:#2a7\"></span></span>"
                                    : "%;background:#b94\"></span></span>");
        strbuf_lit(sb, "<span class=\"visits\">");
        strbuf_u64(sb, p->visits);
        strbuf_lit(sb, "</span>");
        if (p->nslots > 1) {
            strbuf_lit(sb, "<span class=\"slots\">(");
            strbuf_u64(sb, p->nslots);
            strbuf_lit(sb, " volumes)</span>");
        }
        if (!p->answered) {
            strbuf_lit(sb, "<span class=\"stale\"><strong>stale</strong>: ");
            if (p->age_ms < 0) {
                strbuf_lit(sb, "no answer since this pod started");
            } else {
                strbuf_lit(sb, "last answer ");
                html_age(sb, p->age_ms);
                strbuf_lit(sb, " ago");
            }
            strbuf_lit(sb, "</span>");
        }
        strbuf_lit(sb, "</div>\n");
    }
    strbuf_lit(sb, "</div>\n");
    if (v->ex->npeers != 0) {
        strbuf_lit(sb, "<table>\n<thead><tr><th>Peer</th><th>Pod</th><th>Last exchange</th>"
                       "</tr></thead>\n<tbody>\n");
        for (size_t i = 0; i < v->ex->npeers; i++) {
            const struct exchange_peer *p = &v->ex->peers[i];
            strbuf_lit(sb, "<tr><td>");
            html_text(sb, p->address);
            strbuf_lit(sb, "</td><td>");
            html_text(sb, p->pod[0] != '\0' ? p->pod : "?");
            strbuf_lit(sb, "</td><td>");
            if (p->ok) {
                strbuf_lit(sb, "ok");
            } else {
                strbuf_lit(sb, "error: ");
                html_text(sb, p->error);
            }
            strbuf_lit(sb, "</td></tr>\n");
        }
        strbuf_lit(sb, "</tbody>\n</table>\n");
    }
    strbuf_lit(sb, "<p><a href=\"/cluster\">Refresh</a> &middot; <a href=\"/\">Visit</a> "
                   "(counts one visit on the pod that serves it)</p>\n</body>\n</html>\n");
}
