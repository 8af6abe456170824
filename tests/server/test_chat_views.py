"""The chat page's HTML with hostile text everywhere a person, a model file or a database can
put some: a prompt, a label, a field value, a topic, a conversation name, an answer's
markdown. Each must come out as text, never as markup."""

from __future__ import annotations

import time

from assay.ai.conversations import Conversation
from assay.ai.store import AIJob
from assay.jobs.model import ApiKey
from assay.jobs.users import User
from assay.server import chat_views as views
from assay.server.auth import Principal
from assay.server.chat_sessions import ChatUser

EVIL = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"


def _user() -> ChatUser:
    now = time.time()
    key = ApiKey("k1", "pat", "h" * 64, now, user_id="u1")
    user = User("u1", "ann@example.com", EVIL, now, now)
    return ChatUser(Principal(key, user), "c" * 64, "d" * 64)


def _job(**changes: object) -> AIJob:
    now = time.time()
    fields: dict[str, object] = {
        "id": "11111111-1111-1111-1111-111111111111",
        "conversation_id": "22222222-2222-2222-2222-222222222222",
        "state": "COMPLETE", "prompt": EVIL, "model_id": "m", "created_at": now,
        "updated_at": now, "user_id": "u1", "result": {"actions": [], "message": EVIL},
    }  # fmt: skip
    fields.update(changes)
    return AIJob(**fields)  # type: ignore[arg-type]


def _clean(html: str) -> None:
    assert "<script>" not in html and "<img src=x" not in html
    assert ESCAPED in html


def test_labels_values_and_prompts_are_text() -> None:
    rows = views.RowsPage([EVIL, "Revenue"], [[EVIL, "1,234.5"]], [False, True], 1, 3, 60)
    fragment = views.rows_fragment("/chat/a/turns/b/queries/0", rows)
    _clean(fragment)
    assert '<td class="num">1,234.5</td>' in fragment and "Next rows" in fragment

    models = [views.ModelChoice("m", EVIL, ((EVIL, EVIL),))]
    form = views.ask_form(_user(), models, conversation_id="c", model_id="m", topic=EVIL)
    _clean(form)
    assert 'value="&lt;script&gt;' in form  # an attribute value, quoted and escaped

    failed = {"status": "failed", "error": EVIL, "query": {"fields": [EVIL]}}
    action = {"type": "generate_query", "message": EVIL, "result": failed}
    _clean(views.query("/chat/a/turns/b", 0, action, None))


def test_prompts_names_and_answers_are_text() -> None:
    user = _user()
    now = time.time()
    listed = views.conversations(user, [Conversation("c", EVIL, "u1", "m", now, now, EVIL, 2)], [])
    _clean(bytes(listed.body).decode())
    turn = views.turn(user, _job(), views.refusal(EVIL), [("m", EVIL, EVIL)])
    _clean(turn)
    assert turn.count("<form") == 1  # the sample question, a button to ask it
    answer, assumed = views.answer_markdown(
        f"{EVIL}\n\n[x](javascript:alert(3))\n\n_Assumed: {EVIL}_"
    )
    _clean(answer + assumed)
    assert 'href="javascript:' not in answer and "Assumed" in assumed
    running = views.turn(user, _job(state="EXECUTING", progress={"message": EVIL}, result=None))
    _clean(running)
    assert "data-poll=" in running and ">Cancel<" in running
    failed = views.turn(user, _job(state="FAILED", error={"detail": EVIL}, result=None))
    _clean(failed)
    page = bytes(views.page(EVIL, "", user).body).decode()
    assert "<title>&lt;script&gt;" in page and ESCAPED in page  # the user's display name too
