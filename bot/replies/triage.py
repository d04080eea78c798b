"""Reads a customer's reply to a reminder and says what it is, how sure that is, and why.

The default classifier is rules written for accounts receivable: weighted phrases per label, each
skipped when a negation stands just before it ("we have not paid yet" is no claim of payment). Two
labels outrank the others whatever else the reply says, because both must stop automation: a
`dispute` wins over everything, an `opt_out` over everything but a dispute. A payment plan request
then wins over the promise and hardship words it usually carries. Leftover quoted history ("On …
wrote:", "> " lines) and signatures are cut first, so the reminder we sent cannot vote. A long
reply is read at its beginning and its end, and in between where it may opt out or dispute; its
reason says so and a person reads it (see `READ_CHARS`).

A promise's date is read relative to `today` by bot.replies.promise_dates; its `promised_date`, still
importable from here, says what each phrase means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from bot.replies.promise_dates import NextWeekday, normalise_reply, promised_date
from integrations.base.inbound import LABELS, Triage

# Replies after which the sequence may go on unchanged once a person has seen them. Every other
# label stops or holds it: disputes, hardship and wrong contacts (RULES A9), opt-outs (A7, B2),
# promises and plans until their date, claims of payment and questions until a person answers.
SAFE_LABELS = frozenset({"other"})
# Labels a person has to act on, whatever the confidence.
JUDGMENT_LABELS = frozenset(
    {"dispute", "already_paid", "payment_plan_request", "hardship", "question", "wrong_contact"}
)


def lets_reminders_continue(label: str) -> bool:
    """True only for a label that asks nothing of us (an acknowledgement). Never for a dispute or
    an opt-out."""
    return label in SAFE_LABELS


def needs_person(t: Triage, min_confidence: float) -> bool:
    """A person must read the reply before anything else happens: the label is uncertain, only a
    person can act on it, or a promise names no date to hold the reminders until."""
    if t.confidence < min_confidence or t.label in JUDGMENT_LABELS:
        return True
    return t.label == "promise_to_pay" and t.promise_date is None


# --- The customer's own words ---------------------------------------------------------------

_QUOTE_START = re.compile(
    r"\s*(?:-{2,}\s*original message\s*-{2,}|_{8,}|from:\s.*|begin forwarded message:?"
    r"|on\s.*\bwrote:)\s*",
    re.IGNORECASE,
)
_ON_DATE = re.compile(r"\s*on\s.*\d", re.IGNORECASE)
_SIGN_OFF = re.compile(
    r"\s*(?:--\s*|sent from my \S+.*|get outlook for .*|(?:best|kind|warm|many)?\s*regards,?"
    r"|best(?: wishes)?,?|cheers,?|sincerely,?|thanks(?: again)?,|thank you,|br,?"
    r"|confidential.*|this e-?mail (?:is|and) .*|disclaimer.*)\s*",
    re.IGNORECASE,
)


# Where a line may end the customer's words: after any spaces, how every line that _QUOTE_START,
# _ON_DATE or _SIGN_OFF matches begins. Only those lines are looked at one by one. These patterns
# read the reply with a "\n" put before it and start at a "\n", which a search finds quickly; the
# spaces are taken possessively and the first letter is looked at once, so a line costs little.
_MAY_END = re.compile(
    r"\n[^\S\n]*+(?=[-_bcdfgkmorstw])(?:-|_|from:|begin forwarded|on[^\S\n]|sent from my|get outlook"
    r"|best|kind|warm|many|regards|cheers|sincerely|thank|br|confidential|this e|disclaimer)",
    re.IGNORECASE,
)
_QUOTED_LINE = re.compile(r"\n[^\S\n]*+>[^\n]*")
_WORDS_LINE = re.compile(r"\n[^\S\n]*+[^\s>]")  # a line neither blank nor quoted
# The most lines looked at one by one in a long reply (over 2 * READ_CHARS); past them, what
# follows is taken for the customer's words (more for the rules to read, never less), so a mail
# of millions of such lines costs no more. A reply of ordinary length is looked at whole.
MAY_END_LINES = 10_000


def own_words(text: str) -> str:
    """The reply without quoted history (from "On … wrote:", "> " lines) or a signature."""
    lines = "\n" + "\n".join(text.splitlines())  # a line starts after each "\n"
    first_words = _WORDS_LINE.search(lines)
    end = len(lines)
    for looked, match in enumerate(_MAY_END.finditer(lines)):
        if looked == MAY_END_LINES and len(lines) > 2 * READ_CHARS:
            break
        start = match.start() + 1
        line = lines[start : _line_end(lines, start)]
        after = start + len(line) + 1  # where the next line starts
        wraps = (
            after <= len(lines)
            and _ON_DATE.match(line)
            and lines[after : _line_end(lines, after)].strip().endswith("wrote:")
        )
        if _QUOTE_START.fullmatch(line) or wraps:
            end = start
            break
        signed = first_words is not None and first_words.start() + 1 < start
        if signed and _SIGN_OFF.fullmatch(line):
            end = start
            break
    kept = lines[:end]
    if ">" in kept:
        kept = _QUOTED_LINE.sub("", kept)
    return kept.strip()


def _line_end(lines: str, start: int) -> int:
    end = lines.find("\n", start)
    return len(lines) if end < 0 else end


# --- Rules ----------------------------------------------------------------------------------

# One rule a line: label, weight, what a person reads in the reason, the pattern (on lowercased
# text). A weight ending in "!" marks a phrase that carries its own negation ("do not owe"), so a
# negation before it does not undo it; any other rule is skipped when one of the three words before
# it, in the same clause, is a negation. <WHEN> is the start of a date, <PAY> a way to say "pay",
# <DOC> an invoice's or order's number ("inv-2", "#1042").
_RULE_TABLE = r"""
dispute 0.9 "says it disputes the invoice" \bdisput(?:e|es|ed|ing)\b|\bcontest(?:ed|ing)\b
dispute 0.8 "calls the amount wrong" \b(?:wrong|incorrect|inaccurate)\b[^.?!\n]{0,30}\b(?:amount|charge|price|rate|total|invoice|bill|quantity|hours|fee)s?\b
dispute 0.8! "calls the amount wrong" (?:\b(?:amount|charge|price|rate|total|invoice|bill|figure|hours|fee)s?|<DOC>)\b[^.?!\n]{0,25}\b(?:is|are|was|were|looks?|seems?)\s+(?:(?!not\b|never\b)\w+\s+)?(?:wrong|incorrect|not correct|too high)\b|\b(?:the|that) (?:first|second|third|other|last|latest|new|newer|old|older)(?: one)? (?:is|looks|seems)\s+(?:(?!not\b|never\b)\w+\s+)?(?:wrong|incorrect|not correct|too high)\b
dispute 0.8 "says it was billed twice" \b(?:charged|billed|invoiced)\b[^.?!\n]{0,40}\b(?:twice|two times|2 times|double)\b|\bdouble[- ](?:billed|charged|billing)\b|\bduplicate[sd]\b|\bduplicate (?:charge|invoice|bill|billing|payment)s?\b|\b(?:is|looks like|seems to be) a duplicate\b
dispute 0.8 "says it was overcharged" \bover-?(?:charged|billed|billing|charging)\b
dispute 0.75! "says nothing arrived" \b(?:never|not|didn't|did not|haven't|have not|wasn't|was not|weren't|were not)\s+(?:yet\s+)?(?:received|receive|arrived|delivered|shipped|get|got)\b(?![^.?!\n]{0,25}\b(?:invoice|bill|statement|link|email|reminder)s?\b)
dispute 0.7! "says it never ordered or agreed" \b(?:never|not|didn't|did not|haven't|have not)\s+(?:ordered|order|agreed|agree|signed|authori[sz]ed|requested|approved)\b|\bnobody\b[^.?!\n]{0,40}\b(?:authori[sz]ed|approved|ordered|agreed|requested|signed)\b|\bunauthori[sz]ed\b|\b(?:don't|do not) think (?:we|i) (?:should|need to|have to) (?:be )?pay
dispute 0.8 "objects to the charge" \bobject(?:s|ed|ing|ion)?\b|\bchalleng\w+ (?:this|the)\b
dispute 0.7 "will pay only part" \bpay(?:ing)? (?:only )?for (?:\d+|one|two|three|what)\b|\bonly (?:pay|paying)\b
dispute 0.7 "asks to remove a charge" \bremove (?:it|this|that|the \w+) from (?:the|our|my) (?:bill|invoice|account|statement)\b|\bvoid\b
dispute 0.7 "cites what was agreed" \b(?:agreement|contract|quote|quotation|po|estimate|proposal)\b[^.?!\n]{0,20}\b(?:says|said|states|shows|was for|is for|specifies|was [$€£]?\d)
dispute 0.7! "says the work is unfinished or faulty" \b(?:not|never|wasn't|isn't|hasn't been|was never|were never)\s+(?:been\s+)?(?:finished|completed|done|fixed|installed)\b|\b(?:damaged|defective|faulty|misprinted|poor quality|substandard|broke|ruined)\b
dispute 0.75! "refuses to pay" (?:\b(?:won't|wont|refuse to)|(?<!can )(?<!do )(?<!does )\bnot(?: going to)?)\s+(?:be\s+)?(?:pay(?:ing)?|settl(?:e|ing)|cover(?:ing)?)\b(?!\s+(?:\w+\s+){0,2}?(?:until|till|til|before)\s+<WHEN>)
dispute 0.8 "is withholding payment" \bwithhold(?:ing)? (?:the )?payment\b|\bhold(?:ing)? (?:off|back) (?:on )?(?:the )?payment\b
dispute 0.7! "says it cancelled" \bcancell?ed\b[^.?!\n]{0,40}\b(?:subscription|contract|order|service|account|membership)\b|\b(?:subscription|contract|order|service|membership|project|job|booking|appointment)\b[^.?!\n]{0,20}\b(?:was |were |got |been )?cancell?ed\b|\bshould(?: not|n't) (?:have been |be )(?:billed|charged|invoiced)\b
dispute 0.75! "says it is not what was agreed" \b(?:different from|higher than|more than|do(?:es)? not match|do(?:es)?n't match)\b[^.?!\n]{0,40}\b(?:quot\w*|contract|agreed|agreement|estimate|po|purchase order|timesheets?|order)\b
dispute 0.75! "says nothing is owed" \b(?:don't|do not|dont|doesn't|does not)\s+owe\b|\bowe (?:you )?nothing\b
dispute 0.6 "says the goods went back" \breturned (?:it|them|the \w+|everything)\b
dispute 0.6 "says insurance should cover it" \binsurance\b[^.?!\n]{0,60}\bcover
dispute 0.65! "is not happy with the work" \b(?:not happy|unhappy|dissatisfied|unsatisfied|not satisfied)\b
dispute 0.6 "asks for a credit or correction" \bcredit (?:note|memo)\b|\b(?:a|your|full|partial) refund\b|\brefund (?:us|me|the)\b|\b(?:revised|corrected) invoice\b|\bplease (?:correct|adjust|amend|fix|revise)\b
dispute 0.6 "corrects a figure" \b\d[\d,.]*\s*(?:hours?|hrs?|days?|units?|items?|visits?|boxes)?,?\s+not\s+[$€£]?\d
dispute 0.6 "says something was included" \b(?:was|were|is|are) (?:supposed to be |meant to be )?(?:included|free|covered|complimentary|waived)\b|\bfree (?:trial|of charge)\b|\b(?:under|by the|within) warranty\b
dispute 0.6 "makes payment wait for a fix" \b(?:until|till|once)\b[^.?!\n]{0,40}\b(?:fixed|repaired|resolved|corrected|replaced|credited)\b
dispute 0.75 "reports a problem with the invoice" \b(?:problem|issue|discrepancy|error|mistake)s? (?:with|on|in) (?:this|the|your|our|that) (?:invoice|bill|charges?|statement|amount)\b|\bdiscrepanc(?:y|ies)\b
dispute 0.7 "says a discount is missing" \b(?:discount|credit|rebate)\b[^.?!\n]{0,40}\b(?:missing|not applied|not included|left off)\b
dispute 0.6! "says it is not right" \b(?:isn't|is not|not) (?:right|correct|accurate)\b(?! (?:person|contact|address|email|department|recipient))
dispute 0.6 "says only part was delivered" \bonly (?:came|showed up|delivered|received|got|use|used|have|had|ordered|need)\b
dispute 0.7 "is billed for what it no longer has" \b(?:charges?|invoice|bill|fees?)\b[^.?!\n]{0,40}\b(?:we|i)\s+(?:closed|sold|cancell?ed|no longer (?:have|use|own)|don't (?:have|use|own)|never (?:had|used|owned))\b
dispute 0.6 "waits for what was promised" \bwaiting (?:for|on) (?:the|your) (?:\w+ ){0,2}?(?:report|delivery|work|goods|parts|order|documents?|repair|fix|installation)\b
opt_out 0.99! "is an opt-out keyword" ^\W*(?:please |pls )?(?:stop|stopall|stop all|unsubscribe|cancel|end|quit|revoke|opt ?out|opt-out|remove|remove me)(?: please| now)?\W*$
opt_out 0.95 "asks to unsubscribe" \bunsubscribe\b|\bopt(?:[- ]?out| me out)\b
opt_out 0.9 "asks us to stop contacting" \b(?:stop|quit|cease)\s+(?:all\s+)?(?:contacting|emailing|e-mailing|texting|messaging|calling|sending|harass\w*|spamming|bothering|bugging|mailing|writing)\b|\b(?:stop|cease|enough)(?: all| with)? (?:the |these |your )?(?:communication|contact|messages|emails|texts|reminders|calls)\b|\bcease (?:all )?(?:communication|contact)\b
opt_out 0.9! "asks not to be contacted" \b(?:do not|don't|dont|never)\s+(?:\w+\s+)?(?:contact|email|e-mail|text|message|call|write to)\s+(?:me|us|this (?:number|address|email))\b|\b(?:do not|don't|dont)\s+send\s+(?:me|us)\s+(?:any\s+)?(?:more\s+)?(?:emails?|texts?|messages?|reminders?)\b
opt_out 0.9 "withdraws consent" \brevok\w*\b|\bwithdraw\w* (?:my |our )?consent\b|\bno longer (?:want|wish) to (?:receive|get|be contacted)\b
opt_out 0.9! "does not want our messages" \b(?:don't|do not|dont) (?:want|wish) to be (?:contacted|texted|emailed|called|messaged)\b|\b(?:don't|do not|dont) want (?:to (?:get|receive) )?(?:any (?:more )?)?(?:these |your )?(?:texts?|emails?|messages?|reminders?|calls?)\b
opt_out 0.9 "asks to be removed from the list" \b(?:remove|take)\s+(?:me|us|my (?:email|number|address))\s+(?:off|from)\b|\bremove\s+(?:this|my) (?:number|email|address|contact)\b
opt_out 0.85! "asks for no more messages" \bno more (?:texts|emails|messages|reminders|calls)\b
opt_out 0.6 "asks to be left alone" \bleave (?:me|us) alone\b
wrong_contact 0.9 "says we have the wrong person" \bwrong\s+(?:person|number|email|e-mail|address|contact|company|guy|lady|business|customer|recipient|people)\b|\b(?:reached|have|got|texting|emailing|contacted|messaged) (?:the )?wrong\b
wrong_contact 0.8! "says the address is not read" \bno longer (?:monitored|in use|used|active|valid|checked)\b|\bnot monitored\b
wrong_contact 0.75 "reached a personal line" \bpersonal (?:phone|number|email|cell|mobile|line|address)\b
wrong_contact 0.7 "is not in a billing role" \bi(?:'m| am) (?:just |only )?(?:the |a )?(?:receptionist|assistant|intern|front desk|secretary|tenant|employee)\b
wrong_contact 0.85! "says the person has left" \b(?:no longer|not)\s+(?:work(?:s|ing)?|employed)\s+(?:at|for|with|here|there)\b|\bleft the (?:company|firm|business|practice|organi[sz]ation)\b|\bdo(?:es)?(?:n't| not) work (?:here|there) any ?more\b
wrong_contact 0.85! "says the person is no longer there" \b(?:i'm|i am|(?:he|she)'s|(?!(?:it|this|that|which|there|what|who|invoice|bill|payment|account|amount|balance|money|check|cheque|order|statement)\b)[a-z]+ is|they(?:'re| are))\s+no longer\s+(?:(?:with|at|part of)\s+(?:(?:the|this|that|our|your|their)\s+)?(?:company|firm|business|practice|organi[sz]ation|agency|office|clinic|school|store|shop|restaurant)\b|(?:with|at|on|using)\s+(?:this|that) (?:address|email|e-mail|number|phone|mailbox|inbox)\b|(?:with|at)\s+(?!(?:the|this|that|my|our|your|their|a|an|them|you|it|me|him|her)\b)[a-z][\w&'-]*(?:\s+[a-z][\w&'-]*){0,2}\s*(?:[,;!\n]|\.(?:\s|$)|$)|(?:here|there)\b)
wrong_contact 0.8! "is not the billing contact" \bnot (?:the )?(?:right|correct|appropriate) (?:person|contact|address|email|recipient|department)\b|\bnot (?:in |from |part of )?(?:the )?(?:accounting|accounts|billing|finance|payables|ap|a/p)\b
wrong_contact 0.7 "sends us elsewhere" \b(?:send|direct|forward|address|redirect)\s+(?:all\s+)?(?:this|these|invoices?|bills?|billing(?: questions)?|statements?|future \w+|correspondence|it)\s+(?:\w+\s+){0,3}?to\s+(?:our\s+|the\s+)?(?:\S+@\S+|accounts|ap\b|billing|finance|accounting)
wrong_contact 0.75! "does not handle billing" \b(?:don't|do not|doesn't|does not|no longer)\s+(?:handle|deal with|manage|process)\s+(?:the\s+)?(?:billing|invoices|payments|accounts|finances|bills)\b
wrong_contact 0.8! "says it is not their business" \b(?:not|isn't)\s+(?:my|our)\s+(?:business|company|account|customer|client|invoice|bill)\b|\bnot affiliated\b|\bnever heard of\b|\bsomeone else\b|\bsomebody else\b|\bnever been a (?:customer|client)\b|\bconfused (?:me )?with\b|\b(?:don't|do not) know (?:any|this|your|who)\b|\bwho is this\b|\bnever used your\b
wrong_contact 0.75 "says the business changed hands" \bsold (?:the|my|our) (?:\w+ )?(?:business|company|shop|store|bakery|practice|restaurant|firm)\b|\bnew owners?\b|\bretired\b|\bunder new (?:ownership|management)\b
wrong_contact 0.75 "says it reaches someone else now" \b(?:different|another) (?:person|owner|company|business|family)\b|\bbelongs to\b|\bformer (?:employee|owner|tenant|staff|colleague)\b|\b(?:landlord|previous owner|previous tenant)\b
wrong_contact 0.5 "points to someone else" \b(?:please )?(?:contact|reach out to|get in touch with)\s+(?!me\b|us\b)\w+|\breplacement is\b|\bupdate your (?:records|contacts|file)\b|\b(?:use|try|email|write to)\s+\S+@\S+
payment_plan_request 0.95 "asks for a payment plan" \bpayment (?:plan|arrangement|schedule)s?\b|\binstal(?:l)?ments?\b
payment_plan_request 0.9 "asks to split the payment" \b(?:split|spread|break|breaking|divide)\b[^.?!\n]{0,40}\b(?:payments?|parts?|over|into|across|chunks)\b|\bpartial payments?\b|\bsmaller (?:payments|amounts|chunks)\b|\bin (?:(?:two|three|four|2|3|4|several|smaller|small) )?(?:parts|payments|chunks|goes|bits|pieces|stages|portions)\b
payment_plan_request 0.9 "offers regular payments" \b(?:monthly|weekly|bi-?weekly) (?:payments?|instal\w*)\b|(?:[$€£]\s?)?\d[\d,.]*\s*(?:usd|eur|gbp)?\s+(?:a|per|each|every) (?:(?:two|other|2|few) )?(?:month|week)s?\b|\bpay(?:ing)?\b[^.?!\n]{0,30}\b(?:each|every|per) (?:(?:two|other|2|few) )?(?:month|week)s?\b|[$€£]?\d[\d,.]*\s*/\s*(?:month|week|mo|wk)\b|\b(?:of|on) (?:each|every) month\b
payment_plan_request 0.85 "offers part now, the rest later" \b(?:half|part|some|a portion|[$€£]?\d[\d,.]*)\s+(?:now|today|this (?:month|week))\b[^.?!\n]{0,60}\b(?:rest|remaining|remainder|half|second|next month)\b|\b(?:now|today|this (?:month|week))\b,?\s+(?:and|then|with)\s+(?:the )?(?:rest|remaining|remainder|half|second|other|balance|[$€£]?\d)
payment_plan_request 0.75 "asks for an extension" \bextension\b|\bextend(?:ed)? (?:the )?(?:terms|deadline|due date)\b
payment_plan_request 0.6 "asks for flexibility" \bflexib\w+\b
payment_plan_request 0.45 "asks for more time" \b(?:need|want|give (?:me|us)|get)\s+(?:a (?:few|couple of) |(?:\w+ )?(?:more|extra) )(?:days|weeks|months)\b
payment_plan_request 0.8 "asks to pay over time" \bover (?:the (?:next|coming) )?(?:(?:\d+|two|three|four|five|six|a few|several|a couple of) )?(?:months|weeks|quarter|year)\b
hardship 0.85 "mentions cash flow" \bcash ?flow\b|\b(?:cash|money) is (?:a (?:little|bit) |very |really )?(?:tight|short|low)\b|\btight (?:month|right now|financially)\b|\bshort (?:on|of) (?:cash|money|funds)\b|\bfunding\b[^.?!\n]{0,30}\b(?:delayed|cut|late|pulled)\b
hardship 0.85 "mentions financial difficulty" \bfinancial(?:ly)? (?:difficult\w*|hardship|trouble|problems?|struggl\w*|strain)\b|\bhardship\b|\bstruggl\w+\b|\bhard times\b
hardship 0.8! "cannot afford it" \b(?:can't|cannot|can not|cant|unable to|not able to)\s+(?:\w+\s+)?(?:afford|pay)\b(?!\s+(?:\w+\s+){0,2}?(?:until|till|before)\s+<WHEN>)
hardship 0.7! "cannot right now" \b(?:can't|cannot|unable to)\b[^.?!\n]{0,25}\bright now\b
hardship 0.85 "lost income" \b(?:lost|losing) (?:my|our) (?:job|\w+ (?:client|customer)|income|contract)\b|\blaid off\b|\bunemployed\b|\bredundan(?:t|cy)\b|\bout of work\b
hardship 0.85 "mentions illness or bereavement" \bpassed away\b|\bdied\b|\bdeath\b|\bdeceased\b|\bbereave\w*\b|\bfuneral\b|\bhospital\w*\b|\billness\b|\bsick\b(?! of)|\bcancer\b|\bsurgery\b|\bmedical (?:bills|emergency|leave)\b
hardship 0.85 "mentions insolvency" \bbankrupt\w*\b|\bchapter (?:7|11|13)\b|\binsolven\w+\b|\brestructur\w+\b|\bliquidat\w+\b|\bclosing (?:down|the business|our doors)\b|\bout of business\b
hardship 0.7! "waits on its own customers" \bwaiting (?:on|for) (?:a |the )?(?:\w+\s+){0,2}?(?:payment|funds|money|check)\b[^.?!\n]{0,30}\b(?:client|customer)s?\b|\b(?:our|my) (?:clients?|customers?) (?:hasn't|haven't|has not|have not|still hasn't) paid\b
hardship 0.7! "has no money" \bno (?:money|income|revenue|sales|work)\b|\b(?:i'm|we're|i am|we are|totally|flat) broke\b|\bbehind (?:on|with) (?:everything|payments|bills|our bills)\b
hardship 0.7 "says business is bad" \b(?:keep(?:ing)?|stay(?:ing)?) afloat\b|\bbarely (?:keeping|staying|surviving|making|getting by)\b|\b(?:terrible|bad|slow|rough|tough) (?:season|year|month|quarter|few months)\b|\bbusiness (?:has been|is) slow\b|\b(?:went|gone|going) bust\b|\bowes? us\b|\b(?:sales|business|revenue|income|orders) (?:have |has )?(?:collapsed|dropped|dried up|fallen|plummeted|slowed)\b
hardship 0.8 "lives on a small income" \bon (?:disability|benefits|welfare|a fixed income|unemployment|a pension)\b|\bonly afford\b
hardship 0.55 "mentions a disaster" \b(?:flood|fire|hurricane|storm|earthquake|pandemic|covid|robbed|burgl\w+|theft|stolen|lost everything)\b
hardship 0.5 "asks for time" \b(?:need|needs|give (?:me|us)) (?:some )?(?:more )?time\b|\bbe patient\b|\bbear with (?:me|us)\b
already_paid 0.9 "says it already paid" \balready\s+(?:been\s+)?(?:paid|settled|sent|transferred|wired|mailed|taken care of|handled)\b|\b(?:paid|settled)\s+(?:it\s+|this\s+|that\s+)?already\b
already_paid 0.85 "says it was paid" \b(?:has|have|had|was|were|is|'s|'ve)\s+(?:already\s+|now\s+|been\s+)*(?:paid|settled|cleared|taken care of)\b
already_paid 0.85 "says it paid" \b(?:all|fully) (?:settled|paid(?: up)?)\b|\b(?:we|i|they|(?:my|our) \w+)(?:'ve| have| had)?\s+(?:already\s+|just\s+|actually\s+)?(?:paid|settled)\b
already_paid 0.85 "says the payment went out" \b(?:payment|cheque|check|wire|transfer|ach|remittance|funds|money)s?\s+(?:(?!will\b|should\b|to\b|can\b)\S+\s+){0,4}?(?:(?:was|were|has been|have been|had been|got)\s+(?:already\s+)?(?:sent|made|processed|submitted|mailed|posted|initiated|completed|issued|released|transferred|wired|cleared|deposited|received)|went (?:out|through)|cleared|cashed|deposited|left|hit|reached|landed)\b
already_paid 0.85 "says it sent the money" (?:\b(?:we|i)(?:'ve| have| had)?\s+|(?:^|[.!?,;\n])\s*)(?:already\s+|just\s+)?(?:sent|mailed|wired|transferred|posted|cut|issued|made|submitted|initiated)\b(?:\s+\w+){0,3}?\s+(?:payment|cheque|check|wire|money|funds|amount|transfer|balance|[$€£]\s?\d)
already_paid 0.85 "says the payment was sent" \b(?:(?:payment|cheque|check|wire|transfer|ach|eft|remittance|funds|money|deposit)s?\s+){1,2}(?:sent|made|mailed|posted|wired|transferred|submitted|initiated|issued|released|remitted|processed|deposited)\b(?![^.!?,;\n]*\?)(?=\s+(?:today|yesterday|this (?:morning|afternoon|week)|earlier|last\b|on\b|via\b|by\b|through\b|from\b|to (?:you|your)\b|over\b|in full\b|\d)|\s*(?:[.!,;:)\n]|$))
already_paid 0.85 "says when it paid" \bpaid\s+(?:\S+\s+){0,2}?(?:in full|on\b|via|by (?:check|cheque|card|credit card|ach|wire|bank|transfer)|through|over the phone|online|last|yesterday|this morning|earlier)
already_paid 0.95 "says paid" ^\W*(?:paid|already paid|all paid|payment (?:sent|made|done))\W*$
already_paid 0.6 "cites a proof of payment" \bproof of payment\b|\bpayment (?:confirmation|receipt)\b|\bremittance\b|\bconfirmation (?:number|#|no)|\breceipt\b|\btransaction (?:id|number|reference)\b|\bref(?:erence)?\b[\s:#.]*(?:no\.?\s*)?[a-z]*-?\d{3,}|\b(?:check|cheque)\s*(?:#|no\.?\s*)\d+
promise_to_pay 0.8 "says it will pay" (?:\b(?:we|i|it|this|that|payment|invoice|cheque|check|balance|they|accounts|ap)(?:'ll|\s+will|\s+shall|\s+should|\s+can|(?:'re|'m|\s+are|\s+am)\s+(?:going to|gonna)|\s+(?:plan|intend|expect|hope|aim|promise)\s+to)|(?:^|[.!?,;:\n]\s*|\band\s+|\bbut\s+)(?:will|gonna|ill|can|should))\s+(?:(?!not\b|never\b|you\b|i\b|we\b)\w+\s+){0,2}?(?:be able to\s+)?<PAY>\b
promise_to_pay 0.85! "will pay once a date comes" \b(?:can't|cannot|can not|won't|wont|unable to|not able to)\s+(?:be able to\s+)?pay\s+(?:\w+\s+){0,2}?(?:until|till|til|before)\s+<WHEN>
promise_to_pay 0.7 "says it is paying" \b(?:paying|mailing|sending|wiring|transferring|posting)\s+(?:a \w+\s+|the money\s+|payment\s+)?(?:it\s+|this\s+|you\s+|the \w+\s+)?(?:off\s+)?(?:tomorrow|today|tonight|(?:on|by|before)\s+<WHEN>|next \w+|this (?:week|month|\w+day)|end of|in (?:a|an|\d+|one|two|three|a few|a couple of) (?:days?|weeks?))
promise_to_pay 0.7 "says the payment is on its way" \b(?:payment|cheque|check|transfer|wire|money|funds|it)s?(?:'s|\s+is|\s+are|\s+will be)?\s+(?:going out|goes out|being (?:sent|processed|released))\b
promise_to_pay 0.7 "says when to expect payment" \bexpect (?:the |our |your )?(?:payment|a (?:check|cheque|transfer|wire))\b|\byou(?:'ll| will| should) (?:have|receive|get|see) (?:the |our |your |a )?(?:payment|check|cheque|money|funds|transfer|it|this)\b
promise_to_pay 0.7 "says it is scheduled" \b(?:approved|scheduled|queued|lined up)\b[^.?!\n]{0,30}\b(?:payment|pay run|check run|payments)\b|\b(?:payment|it|check|cheque|transfer|wire)s?\s+(?:is|are|has been|was)\s+(?:\w+\s+)?(?:scheduled|booked|queued|set up)\b|\b(?:payment|pay|check|cheque)\s+run\b
promise_to_pay 0.7 "will bring a payment" \b(?:drop(?:ping)? off|bring(?:ing)?|with)\s+(?:a\s+|the\s+|your\s+)?(?:check|cheque|payment|cash)\b
promise_to_pay 0.5 "says it will do it" \b(?:will|'ll) (?:do|sort|handle) (?:it|this|that)\b
promise_to_pay 0.6 "promises" \bpromise\b
question 0.95! "is the HELP keyword" ^\W*(?:help|info)\W*$
question 0.7 "asks for a document" \b(?:send|resend|re-send|forward|email|provide|share|get|need)\s+(?:me\s+|us\s+)?(?:a\s+|an\s+|the\s+|your\s+)?(?:copy|copies|pdf|w-?9|statement|breakdown|itemi[sz]ed|invoice|payment link|link|bank details|backup)\b
question 0.7 "asks how to pay" \bdo you (?:take|accept)\b|\bcan i pay (?:by|with|via|using)\b|\bbank details\b|\bwire instructions\b|\brouting number\b|\biban\b|\bwhere (?:do|should|can) (?:i|we) (?:send|mail|pay)\b|\bhow much\b
question 0.55 "asks a question" \?|^\W*(?:what|what's|how|where|which|when|who|why|is|are|do|does|can you|could you)\b
question 0.7 "asks where to send payment" \bremit(?:-to|tance)? address\b|\bmailing address\b|\bwhere to (?:send|mail|pay)\b
other 0.85! "is an acknowledgement" ^\W*<ACK>(?:[\s.!,]+(?:<ACK>|with thanks))*\W*$
other 0.8! "re-subscribes" ^\W*(?:start|unstop|subscribe)\W*$
other 0.7! "asks us to keep sending" \b(?:don't|do not|dont) stop\b|\bkeep (?:sending|them coming)\b
other 0.7 "passed it on" \b(?:forwarded|passed|passing|forwarding|(?:will|'ll) (?:pass|forward)) (?:this|it|that|the \w+)?\s?(?:on |along )?to\b
other 0.65 "is looking into it" \b(?:i|we|i'm|we're|i'll|we'll|will|let me|to)\s+(?:\w+\s+)?(?:look(?:ing)? into|check(?:ing)?(?: with| on| into)?|circl(?:e|ing) back)\b|\bget back to you\b|\blet you know\b
other 0.4 "says thanks" \bthanks?\b|\bthank you\b|\bappreciate\b
"""
_FRAGMENTS = {
    "<WHEN>": r"(?:the\s+)?(?:\d|next|mon|tue|wed|thu|fri|sat|sun|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|end|tomorrow)",
    "<PAY>": r"(?:pay|settle|transfer|wire|send|remit|sort (?:out )?(?:the |a )?payment|make sure (?:it|this|that|the \w+)(?:'s| is| gets)? paid|have (?:it|this|that|the \w+) (?:paid|sent|settled|transferred|over)|make (?:a |the |your |this |full )?payments?|process|release|submit|mail|post|take care of|clear|cover|include|be included|get (?:it|this|that|them|these|everything|the \w+|an? \w+|\S+-\d+) (?:paid|settled|sorted|done|processed|out|over|sent|across)|go out|be (?:paid|sent|processed|released|settled|made|transferred|wired|mailed|posted|issued))",
    "<DOC>": r"\b[a-z]{2,}-?\d[\w-]*|#\d+",
    "<ACK>": r"(?:ok(?:ay)?|k|thanks?|thank you|thx|ty|noted|received|got it|understood|great|cheers|👍|🙏)",
}  # fmt: skip
_RULE_LINE = re.compile(r'(\w+) ([\d.]+)(!?) "([^"]+)" (.+)')


@dataclass(frozen=True)
class Rule:
    label: str
    weight: float
    name: str  # what a person reads in the reason
    pattern: re.Pattern[str]
    negatable: bool  # False: the phrase carries its own negation


def _parse_rules(table: str) -> list[Rule]:
    rules = []
    for line in filter(None, table.splitlines()):
        match = _RULE_LINE.fullmatch(line)
        assert match is not None and match[1] in LABELS, f"bad triage rule: {line}"
        pattern = match[5]
        for name, fragment in _FRAGMENTS.items():
            pattern = pattern.replace(name, fragment)
        rules.append(Rule(match[1], float(match[2]), match[4], re.compile(pattern), not match[3]))
    return rules


RULES = _parse_rules(_RULE_TABLE)
_NEGATION = re.compile(
    r"\b(?:not|no|never|cannot|nor|yet to|dont|wont|cant|havent|hasnt|didnt|isnt|wasnt|doesnt)\b"
    r"|n't\b"
)
_FUTURE = re.compile(
    r"\b(?:will|shall|going|gonna|be|to|get|gets|getting|can|once|when|until|if)\b|'ll\b"
)
_CONDITION = re.compile(r"\b(?:before|unless|if|until|till|once|when)\b")
_CLAUSE_END = re.compile(r"[.;:!?,\n]|\bbut\b|\band\b")


def _preceding_words(text: str, start: int, count: int = 3) -> str:
    clause = _CLAUSE_END.split(text[max(0, start - 60) : start])[-1]
    return " ".join(clause.split()[-count:])


def _fires(rule: Rule, text: str) -> re.Match[str] | None:
    """The first match no negation undoes (nor a future or a condition, for what a payment is)."""
    for match in rule.pattern.finditer(text):
        before = _preceding_words(text, match.start())
        if rule.negatable and _NEGATION.search(before):
            continue
        if rule.label == "already_paid" and _FUTURE.search(before):
            continue
        if rule.label == "promise_to_pay" and _CONDITION.search(before):
            continue
        return match
    return None


# --- Deciding -------------------------------------------------------------------------------

_OUTRANKS = (("dispute", 0.5), ("opt_out", 0.5), ("payment_plan_request", 0.7))
# Between equal scores, the label that asks more of a person wins.
_TIE_ORDER = (
    "dispute", "opt_out", "wrong_contact", "payment_plan_request", "hardship", "already_paid",
    "promise_to_pay", "question", "other",
)  # fmt: skip
_NO_RULE_CONFIDENCE = 0.3
_MAX_CONFIDENCE = 0.97


@dataclass(frozen=True)
class _Evidence:
    score: float
    hits: tuple[tuple[Rule, str], ...]


def _hits(text: str, rules: list[Rule]) -> list[tuple[Rule, str]]:
    hits = []
    for rule in rules:
        match = _fires(rule, text)
        if match is not None:
            hits.append((rule, match.group().strip()))
    return hits


def _evidence(hits: list[tuple[Rule, str]]) -> dict[str, _Evidence]:
    found: dict[str, list[tuple[Rule, str]]] = {label: [] for label in LABELS}
    for rule, words in hits:
        found[rule.label].append((rule, words))
    evidence = {}
    for label, label_hits in found.items():
        doubt = 1.0
        for rule, _ in label_hits:
            doubt *= 1 - rule.weight
        evidence[label] = _Evidence(min(1 - doubt, _MAX_CONFIDENCE), tuple(label_hits))
    return evidence


# --- What a long reply's rules read ---------------------------------------------------------

# Each rule walks the whole text it is given, so a reply of 25 MB would cost minutes. A longer
# reply is read by every rule at its beginning and its end; in between, only the passages around
# a word of an opt-out or of the plainest disputes (disputed, wrong, overcharged, billed twice,
# refuses) are read, by those two labels' rules, so those are not missed wherever they stand. What
# is left unread is said in the reason, and a person reads the reply.
READ_CHARS = 25_000  # at each end of a long reply
PASSAGE_CHARS = 200  # either side of a word that may start an opt-out or a dispute
MIDDLE_PASSAGES = 500  # the most passages read between the two ends
STOP_RULES = [rule for rule in RULES if rule.label in ("dispute", "opt_out")]
# Searched for one at a time: a search for one word runs through a long reply at memory speed,
# where one pattern of them all would try each at every character.
STOP_WORDS = (
    "unsubscri", "opt out", "opt-out", "optout", "opt me", "stop", "quit", "cease", "revok",
    "consent", "remov", "contact me", "contact us", "contact this", "mail me", "mail us",
    "message me", "message us", "text me", "call me", "call us", "send me", "no more", "leave me",
    "leave us", "disput", "contest", "wrong", "incorrect", "overcharg", "over-charg", "overbill",
    "over-bill", "twice", "double", "duplicat", "refus", "withhold", " owe", "take me", "take us",
    "this number", "this address", "this email", "write to", "no longer", "enough", "want to be",
    "want these", "want your", "want any", "want them", "never", "unauthori", "not happy",
    "unhappy", "object", "won't pay", "will not pay", "not pay", "defect",
)  # fmt: skip
_STOP_WORDS = [re.compile(re.escape(word)) for word in STOP_WORDS]


@dataclass(frozen=True)
class _Reading:
    text: str  # what every rule reads
    passages: str  # from the middle, for the opt-out and dispute rules
    length: int  # of the whole reply
    unread: bool  # some of the middle went unread: more passages than MIDDLE_PASSAGES
    whole: bool  # every rule read the whole reply

    def note(self) -> str:
        if self.whole:
            return ""
        note = (
            f"; a long reply ({self.length:,} characters): the rules read its first and last"
            f" {READ_CHARS:,} and, between them, only passages that may opt out or dispute"
        )
        if self.unread:
            note += f" (near the first {MIDDLE_PASSAGES} such words)"
        return note + "; a person should read the rest"


def _reading(words: str) -> _Reading:
    if len(words) <= 2 * READ_CHARS:
        return _Reading(words, "", len(words), unread=False, whole=True)
    middle_end = len(words) - READ_CHARS
    found: list[int] = []
    unread = False
    for word in _STOP_WORDS:
        for n, match in enumerate(word.finditer(words, READ_CHARS, middle_end)):
            if n == MIDDLE_PASSAGES:
                unread = True
                break
            found.append(match.start())
    found.sort()
    if len(found) > MIDDLE_PASSAGES:
        unread, found = True, found[:MIDDLE_PASSAGES]
    spans: list[tuple[int, int]] = []
    for at in found:
        start = max(at - PASSAGE_CHARS, READ_CHARS)
        end = min(at + PASSAGE_CHARS, middle_end)
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    passages = "\n".join(words[start:end] for start, end in spans)
    text = words[:READ_CHARS] + "\n" + words[middle_end:]
    return _Reading(text, passages, len(words), unread, whole=False)


def _winner(scores: dict[str, float]) -> str:
    for label, threshold in _OUTRANKS:
        if scores[label] >= threshold:
            return label
    best = max(_TIE_ORDER, key=lambda label: (scores[label], -_TIE_ORDER.index(label)))
    if best == "other" and max(scores["dispute"], scores["opt_out"]) > 0:
        return "dispute" if scores["dispute"] >= scores["opt_out"] else "opt_out"
    return best if scores[best] > 0 else "other"


def _reason(
    label: str, hits: tuple[tuple[Rule, str], ...], beaten: list[str], reading: _Reading
) -> str:
    if not hits:
        return "no rule matched; a person should read it" + reading.note()
    rule, words = max(hits, key=lambda hit: hit[0].weight)
    reason = f'{label}: {rule.name} ("{words}")'
    return reason + (f"; outranks {', '.join(beaten)}" if beaten else "") + reading.note()


class RuleClassifier:
    """The rules above. `next_weekday` says what "next Friday" means (see `promised_date`)."""

    def __init__(self, next_weekday: NextWeekday = "next_week") -> None:
        self.next_weekday: NextWeekday = next_weekday

    def own_words(self, text: str) -> str:
        """What a model may be shown of the reply: see `own_words`."""
        return own_words(text)

    def classify(self, text: str, today: date) -> Triage:
        reading = _reading(normalise_reply(own_words(text) or text))
        hits = _hits(reading.text, RULES)
        fired = {rule for rule, _ in hits}
        if reading.passages:
            rules = [rule for rule in STOP_RULES if rule not in fired]
            hits += _hits(reading.passages, rules)
        evidence = _evidence(hits)
        due = promised_date(reading.text, today, self.next_weekday)
        promise = evidence["promise_to_pay"]
        if due is not None and promise.score > 0:  # a date beside a promise makes it firmer
            evidence["promise_to_pay"] = _Evidence(
                min(1 - (1 - promise.score) * 0.5, _MAX_CONFIDENCE), promise.hits
            )
        scores = {label: e.score for label, e in evidence.items()}
        label = _winner(scores)
        if not evidence[label].hits:
            return Triage(label, _NO_RULE_CONFIDENCE, None, _reason(label, (), [], reading))
        rivals = [s for other, s in scores.items() if other not in (label, "other")]
        runner_up = max(rivals, default=0.0)
        outranked = label in ("dispute", "opt_out")  # they win by rule; rivals cast no doubt
        confidence = scores[label] if outranked else scores[label] * (1 - 0.4 * runner_up)
        if not (reading.whole or outranked):  # what went unread may change it: a person reads it
            confidence = min(confidence, _NO_RULE_CONFIDENCE)
        beaten = [other for other, s in scores.items() if other != label and s >= 0.5]
        promise_date = due if label == "promise_to_pay" else None
        reason = _reason(label, evidence[label].hits, beaten, reading)
        return Triage(label, round(confidence, 3), promise_date, reason)


def classify(text: str, today: date) -> Triage:
    """Labels a reply with the default rules."""
    return RuleClassifier().classify(text, today)
