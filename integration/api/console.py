"""`/console`: pages for people, server-rendered (Jinja, autoescaped; a little plain JavaScript
for the live status; no CDN, no build step).

A key holder sees their jobs (by status and surface, newest first, paged), a job's page (live
status over the console's own event stream, timings, cost, input, the result rendered:
chat text, images, audio, video, embeddings summarised; and its events), webhook
subscriptions (create, enable or disable, rotate the secret, send a test event) with their
deliveries (status, latency, response body) and a redeliver button, dead letters, and the
month's usage against the key's limits with a chart of jobs and spend per day. An admin
key also sees every key's usage, open circuits and queue depths. Everything a worker or a
receiver wrote is shown as text (autoescaping; links only to http(s) or podrelay's own
paths), and every page carries a Content-Security-Policy that allows no inline script.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict

from flask import Blueprint, Response, abort, redirect, render_template, request, stream_with_context, url_for

from integration import surfaces
from integration.accounts import limits
from integration.accounts.keys import list_keys, stored_limits
from integration.api import console_session as auth
from integration.api.context import resources
from integration.jobs.record import JobStatus
from integration.jobs.streaming import job_events
from integration.readiness import gauges
from integration.runpod.circuit import open_circuits
from integration.webhooks.outbound import check_target

bp = Blueprint("console", __name__, template_folder="templates", static_folder="static", static_url_path="/static")
CSP = (
    "default-src 'self'; img-src 'self' https: data:; media-src 'self' https:; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@bp.record_once
def _configure(state) -> None:
    auth.configure(state.app)


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def _signed_in() -> auth.Viewer:
    found = auth.viewer()
    if found is None:
        abort(redirect(url_for("console.login")))
    if request.method == "POST":
        auth.check_csrf(found)
    return found


def safe_url(url) -> str | None:
    """A link the page may use: http(s) or one of podrelay's own paths; None otherwise."""
    if isinstance(url, str) and (url.startswith(("https://", "http://")) or (url.startswith("/") and not url.startswith("//"))):
        return url
    return None


@bp.app_template_filter("when")
def _when(value) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value)) if value else "—"


@bp.get("/")
def home():
    """The jobs page, or the sign-in page."""
    return redirect(url_for("console.jobs" if auth.viewer() else "console.login"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Sign in with an API key (it is checked, then forgotten: the session holds its id)."""
    error = None
    if request.method == "POST":
        auth.check_csrf(None)
        if auth.sign_in(request.form.get("key", "")):
            return redirect(url_for("console.jobs"))
        error = "That is not a live API key."
    return render_template("console/login.html", csrf=auth.login_csrf(), error=error), 401 if error else 200


@bp.post("/logout")
def logout():
    """Sign out."""
    _signed_in()
    auth.sign_out()
    return redirect(url_for("console.login"))


@bp.get("/jobs")
def jobs():
    """The key's jobs, newest first, by status and surface, 25 a page."""
    me = _signed_in()
    status = request.args.get("status") if request.args.get("status") in {s.value for s in JobStatus} else None
    surface = request.args.get("surface") if request.args.get("surface") in surfaces.SURFACES else None
    store = resources().jobs
    found, next_cursor = store.list_for_key(me.key_id, 25, request.args.get("cursor") or None, status, surface)
    return render_template("console/jobs.html", me=me, jobs=[store.shown(j) for j in found], next_cursor=next_cursor,
                           status=status, surface=surface, statuses=[s.value for s in JobStatus], surfaces=list(surfaces.SURFACES))  # fmt: skip


@bp.get("/jobs/<job_id>")
def job(job_id: str):
    """One job: status (live), timings, cost, input, result, events."""
    me = _signed_in()
    store = resources().jobs
    record = store.owned(job_id, me.key_id)
    shown = store.shown(record)
    events = [fields for _, fields in store.log.entries(job_id, "status")]
    return render_template("console/job.html", me=me, job=shown, record=record, result=_rendered(shown), events=events,
                           input=json.dumps(record.input, indent=2, ensure_ascii=False)[:20000])  # fmt: skip


def _rendered(shown: dict) -> dict:
    """What the job page shows of a result: text, files (with a kind and a safe link), or a summary."""
    result = shown.get("result")
    if not isinstance(result, dict):
        return {"json": json.dumps(result, indent=2, ensure_ascii=False)[:20000] if result is not None else None}
    out: dict = {"json": json.dumps(result, indent=2, ensure_ascii=False)[:20000]}
    choices = result.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        out["text"] = str((choices[0].get("message") or {}).get("content") or "")
    elif isinstance(result.get("text"), str):
        out["text"] = result["text"]
    items = result.get("data") if isinstance(result.get("data"), list) else []
    vectors = [i["embedding"] for i in items if isinstance(i, dict) and isinstance(i.get("embedding"), list)]
    if vectors:
        out["embeddings"] = {"count": len(vectors), "dimensions": len(vectors[0]), "first": vectors[0][:5]}
    files = []
    for item in items:
        url = safe_url(item.get("url")) if isinstance(item, dict) else None
        if url:
            kind = str(item.get("content_type") or "")
            files.append(
                {"url": url, "kind": kind.split("/")[0] if "/" in kind else "file", "type": kind, "bytes": item.get("bytes")}
            )
    out["files"] = files
    return out


@bp.get("/jobs/<job_id>/events")
def job_event_stream(job_id: str):
    """The job's events for the page's live status (the session's key, not a Bearer header)."""
    me = _signed_in()
    res = resources()
    record = res.jobs.owned(job_id, me.key_id)
    deadline = time.monotonic() + min(res.settings.hold_max_seconds, 600)

    def stream():
        yield "retry: 3000\n\n"
        for event in job_events(res.jobs, res.waiter, record, deadline=deadline):
            if event.name == "status":
                yield f"event: status\ndata: {json.dumps(event.data)}\n\n"
            elif event.name == "job":
                yield f"event: job\ndata: {json.dumps({'status': event.data.get('status')})}\n\n"
                return
            elif event.name == "keepalive":
                yield ": keepalive\n\n"

    return Response(stream_with_context(stream()), mimetype="text/event-stream", headers={"X-Accel-Buffering": "no"})


@bp.route("/webhooks", methods=["GET", "POST"])
def webhooks():
    """The key's subscriptions, and a form to add one."""
    me = _signed_in()
    res, error = resources(), None
    if request.method == "POST":
        url = request.form.get("url", "").strip()
        try:
            check_target(url, res.settings.webhook_allow_private, "url")
            sub = res.subscriptions.create(me.key_id, url, None, None, request.form.get("description", "")[:500],
                                           most=res.settings.webhook_max_subscriptions)  # fmt: skip
            return redirect(url_for("console.webhook", sub_id=sub.id, created=1))
        except Exception as problem:  # an ApiError (bad URL, too many) shown on the form
            error = getattr(problem, "message", None) or "That URL cannot receive webhooks."
    dead = res.deliveries.list(me.key_id, None, "dead", 50)
    return render_template("console/webhooks.html", me=me, subs=res.subscriptions.for_key(me.key_id), dead=dead, error=error)


@bp.route("/webhooks/<sub_id>", methods=["GET", "POST"])
def webhook(sub_id: str):
    """One subscription: its settings, actions and deliveries with their attempts."""
    me = _signed_in()
    res = resources()
    sub = res.subscriptions.owned(sub_id, me.key_id)
    shown_secret = None
    if request.method == "POST":
        action = request.form.get("action")
        if action == "rotate":
            shown_secret = res.subscriptions.rotate(sub).secret
        elif action == "test":
            res.subscriptions.send_test(sub)
        elif action in ("enable", "disable"):
            res.subscriptions.update(sub.id, **res.subscriptions.owner_changes(action == "enable"))
        sub = res.subscriptions.owned(sub_id, me.key_id)
    elif request.args.get("created"):
        shown_secret = sub.secret
    deliveries = [(d, res.deliveries.attempts(d.id)[-3:]) for d in res.deliveries.list(me.key_id, sub.id, None, 50)]
    return render_template("console/webhook.html", me=me, sub=sub, deliveries=deliveries, secret=shown_secret)


@bp.post("/deliveries/<delivery_id>/redeliver")
def redeliver(delivery_id: str):
    """Send a delivery again, then back to where the button was."""
    me = _signed_in()
    res = resources()
    delivery = res.deliveries.owned(delivery_id, me.key_id)
    res.deliveries.redeliver(delivery)
    back = (
        url_for("console.webhook", sub_id=delivery.subscription_id) if delivery.subscription_id else url_for("console.webhooks")
    )
    return redirect(back)


@bp.get("/usage")
def usage():
    """This month's usage against the key's limits, and jobs and spend per day (the last 30 days)."""
    me = _signed_in()
    res = resources()
    used = limits.usage(res.redis, me.key_id).to_dict()
    effective = limits.Limits.resolve(stored_limits(res.redis, me.key_id), res.settings).to_dict()
    days = _per_day(me.key_id)
    return render_template("console/usage.html", me=me, used=used, limits=effective, days=days,
                           most_jobs=max([d["jobs"] for d in days] + [1]), most_spend=max([d["spend"] for d in days] + [1e-9]))  # fmt: skip


def _per_day(key_id: str, most: int = 2000) -> list[dict]:
    store = resources().jobs
    counted: dict[str, dict] = defaultdict(lambda: {"jobs": 0, "spend": 0.0})
    cursor, seen, since = None, 0, time.time() - 30 * 86400
    while seen < most:
        found, cursor = store.list_for_key(key_id, 100, cursor, None, None)
        for job in found:
            if job.created < since:
                cursor = None
                break
            day = counted[time.strftime("%Y-%m-%d", time.gmtime(job.created))]
            day["jobs"] += 1
            day["spend"] += (job.cost or 0.0) if job.status == JobStatus.COMPLETED else 0.0
        seen += len(found)
        if not cursor:
            break
    return [{"day": day, **values} for day, values in sorted(counted.items())]


@bp.get("/admin")
def admin():
    """For admin keys: every key's usage, open circuits, queue depths."""
    me = _signed_in()
    if not me.admin:
        abort(403)
    res = resources()
    keys = [(key, limits.usage(res.redis, key.id).to_dict()) for key in list_keys(res.redis)]
    depth = {name: value for name, (_, value) in gauges(res.redis).items()}
    return render_template("console/admin.html", me=me, keys=keys, circuits=open_circuits(res.redis), gauges=depth)
