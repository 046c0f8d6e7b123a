"""The live-captions page in headless Chromium, through the real Envoy and the real stack.

Chromium's fake microphone plays a speech WAV, so the page captures, resamples and streams
it exactly as it would a person speaking; the test reads what the page shows.
"""

import itertools
import re
import shutil
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from dragoman.clients.tcp_proxy import CuttableProxy
from dragoman.clients.wer import normalize
from dragoman.launch.edge import Edge
from dragoman.launch.stack_settings import EdgeSettings
from tests.conftest import DATA, own_gateway
from tests.streaming import read_wav, samples, silence

ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
SPOKEN = "ask not what your country can do for you"
ROOM = "browser-test"
SPEAKER = "Ana"


@pytest.fixture(scope="module")
def microphone(tmp_path_factory) -> Path:
    """jfk.wav twice, between silences: the fake microphone plays it once from the capture
    start. The second time comes well after the first final result, so a language change
    made on that result surely applies to it."""
    clip = samples(read_wav(DATA / "en" / "jfk.wav"))
    gap = silence(4.0, 16000)
    audio = np.concatenate([silence(1.0, 16000), clip, gap, clip, gap])
    path = tmp_path_factory.mktemp("microphone") / "speech.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(audio.tobytes())
    return path


@pytest.fixture(scope="module")
def browser(microphone) -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium, "the browser tests need Debian's chromium: `make browser` installs it"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={microphone}%noloop"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, edge) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 1100})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"http://{edge.address}/")
    yield page
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _finals(page: Page, panel: str) -> list[str]:
    return page.locator(f"{panel} .caption.final .transcript").all_inner_texts()


def _translations(page: Page, panel: str, language: str) -> list[str]:
    return page.locator(
        f"{panel} .caption.final .translation[data-lang={language}]"
    ).all_inner_texts()


@pytest.fixture
def listeners(browser, page) -> Iterator[Callable[[str], Page]]:
    """Opens the page in tabs of their own that follow ROOM, each in a language ("" for
    the spoken one), and checks at the end that none of them hit an uncaught error."""
    opened: list[Page] = []
    errors: list[str] = []

    def listen(language: str) -> Page:
        listener = browser.new_page()
        opened.append(listener)
        listener.on("pageerror", lambda error: errors.append(str(error)))
        listener.goto(page.url)
        listener.fill("#listen-room", ROOM)
        listener.select_option("#listen-language", language)
        listener.click("#listen")
        _wait(
            lambda: listener.get_attribute("#listen-status", "data-state") == "listening",
            10,
            f"the room listener in {language or 'the spoken language'}",
        )
        return listener

    yield listen
    for listener in opened:
        listener.context.close()
    assert not errors, f"uncaught errors in the listeners' pages: {errors}"


def _room_finals(listener: Page) -> dict[str, tuple[str, str, str]]:
    """The listener's final captions by speaker and segment id: the speaker's name shown,
    the caption's language and its text."""
    return {
        key: (speaker, language, text)
        for key, speaker, language, text in listener.eval_on_selector_all(
            "#listen-captions .caption.final",
            """captions => captions.map(c => [
                `${c.dataset.speaker}/${c.dataset.segment}`,
                c.querySelector(".speaker").innerText,
                c.lang,
                c.querySelector(".text").innerText,
            ])""",
        )
    }


def test_the_microphone_is_captioned_live_with_translations_and_a_room_follows(
    browser, page, listeners
) -> None:
    original = listeners("")
    portuguese = listeners("pt")

    page.uncheck("input[name=target][value=pt]")
    page.fill("#room", ROOM)
    page.fill("#speaker-label", SPEAKER)
    page.click("#start")
    styles: dict[str, str] = {}

    def watching_interims(condition: Callable[[], bool]) -> Callable[[], bool]:
        def check() -> bool:
            interim = page.locator("#captions .caption.interim .transcript")
            if interim.count() and interim.first.inner_text():
                styles["interim"] = interim.first.evaluate("e => getComputedStyle(e).color")
            return condition()

        return check

    try:
        _wait(watching_interims(lambda: bool(_finals(page, "#captions"))), 30, "a final caption")
        page.check("input[name=target][value=pt]")
        _wait(
            watching_interims(
                lambda: (
                    SPOKEN in normalize(" ".join(_finals(page, "#captions")))
                    and any("país" in t for t in _translations(page, "#captions", "pt"))
                )
            ),
            60,
            f"{SPOKEN!r} and its Portuguese translation",
        )
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "live-captions.png"), full_page=True)
    first = page.locator("#captions .caption.final").first
    assert first.locator(".translation").count() == 0, "the change applies from the next line"
    styles["final"] = first.locator(".transcript").evaluate("e => getComputedStyle(e).color")
    assert "interim" in styles, "interim captions were shown while speech went on"
    assert styles["interim"] != styles["final"], "interim text looks different from final"
    assert page.get_attribute("#status", "data-state") == "listening"
    assert re.search(r"trace [0-9a-f]{32}", page.inner_text("#session")), "the page's trace id"

    def translated_caption() -> str | None:
        """The key of a final that says "country" in the original tab and "país" in the
        Portuguese one, once the original tab has every spoken word."""
        english, translated = _room_finals(original), _room_finals(portuguese)
        if SPOKEN not in normalize(" ".join(text for _, _, text in english.values())):
            return None
        for key, (_, _, text) in english.items():
            if "country" in normalize(text) and "país" in translated.get(key, ("", "", ""))[2]:
                return key
        return None

    try:
        _wait(
            lambda: translated_caption() is not None,
            60,
            f"{SPOKEN!r} in the original room tab and its Portuguese in the other",
        )
    finally:
        original.screenshot(path=str(ARTIFACTS / "room-listener.png"), full_page=True)
        portuguese.screenshot(path=str(ARTIFACTS / "room-listener-pt.png"), full_page=True)
    key = translated_caption()
    assert key is not None
    english, translated = _room_finals(original), _room_finals(portuguese)
    assert {speaker for speaker, _, _ in english.values()} == {SPEAKER}
    assert {speaker for speaker, _, _ in translated.values()} == {SPEAKER}
    (_, english_language, english_text), (_, language, text) = english[key], translated[key]
    assert english_language == "en", "the original tab reads the caption as spoken"
    assert language == "pt", "the other tab reads it in the language it chose"
    assert normalize(text) != normalize(english_text), "the Portuguese tab shows a translation"
    assert not portuguese.locator("#listen-captions .translation.error").count()

    page.click("#stop")
    _wait(lambda: page.get_attribute("#status", "data-state") == "stopped", 20, "the stop")


def test_a_file_is_recognized_through_grpc_web(page) -> None:
    page.set_input_files("#file", str(DATA / "en" / "jfk.wav"))
    page.click("#recognize")
    _wait(
        lambda: page.get_attribute("#file-status", "data-state") in ("done", "error"),
        60,
        "the Recognize call",
    )
    assert page.get_attribute("#file-status", "data-state") == "done"
    assert SPOKEN in normalize(" ".join(_finals(page, "#file-results")))
    assert any("país" in t for t in _translations(page, "#file-results", "pt"))


def test_a_refused_language_shows_the_servers_status_and_message(page) -> None:
    page.select_option("#source", "pt")
    page.click("#start")
    _wait(lambda: page.get_attribute("#status", "data-state") == "error", 20, "the refusal")
    assert "INVALID_ARGUMENT" in page.inner_text("#status")
    assert "English-only" in page.inner_text("#status")


@pytest.fixture
def guarded_page(browser, stack, tmp_path) -> Iterator[tuple[Page, str]]:
    """The page in front of a gateway that takes only the token `page-token`."""
    tokens = tmp_path / "tokens"
    tokens.write_text("page-token\n")
    with own_gateway(stack, auth_tokens_file=str(tokens)) as app:
        edge = Edge(
            EdgeSettings(port=0, admin_port=0),
            grpc_addresses=[("127.0.0.1", app.host.port)],
            http_addresses=[("127.0.0.1", app.web.port)],
        )
        stack.loop.run(edge.start())
        context = browser.new_context()
        try:
            yield context.new_page(), f"http://{edge.address}/"
        finally:
            context.close()
            stack.loop.run(edge.stop())


def test_a_deployment_with_tokens_takes_the_token_from_the_page_fragment(guarded_page) -> None:
    page, url = guarded_page
    page.goto(url)
    page.click("#start")
    _wait(lambda: page.get_attribute("#status", "data-state") == "error", 20, "the refusal")
    assert "UNAUTHENTICATED" in page.inner_text("#status")

    page.goto(url + "#token=page-token")
    page.reload()
    page.set_input_files("#file", str(DATA / "en" / "jfk.wav"))
    page.click("#recognize")
    _wait(
        lambda: page.get_attribute("#file-status", "data-state") in ("done", "error"),
        60,
        "Recognize",
    )
    assert SPOKEN in normalize(" ".join(_finals(page, "#file-results")))
    page.click("#start")
    _wait(lambda: bool(_finals(page, "#captions")), 40, "a live final with the token")
    page.click("#stop")


@pytest.fixture
def cuttable_page(browser, edge, stack) -> Iterator[tuple[Page, CuttableProxy]]:
    """The page reached through a TCP proxy in front of Envoy that the test can cut, as a
    mobile network would: the browser's connections are reset, the gateway's session is
    kept (for its `resume_grace_s`)."""
    proxy = CuttableProxy(("127.0.0.1", edge.port))
    stack.loop.run(proxy.start())
    context = browser.new_context()
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page, proxy
    finally:
        context.close()
        stack.loop.run(proxy.stop())
    assert not errors, f"uncaught errors in the page: {errors}"


async def _cut(proxy: CuttableProxy) -> int:
    return proxy.cut()


CAPTIONED = SPOKEN.removeprefix("ask ")
"""SPOKEN, less its first word: tiny.en hears "ask" as "s" in some runs, cut or not."""
RECORD_STATES = """() => {
    const status = document.getElementById("status");
    const states = (window.liveStates = [status.dataset.state]);
    new MutationObserver((records) => {
        for (const record of [...records, { oldValue: status.dataset.state }]) {
            if (states.at(-1) !== record.oldValue) states.push(record.oldValue);
        }
    }).observe(status, { attributeFilter: ["data-state"], attributeOldValue: true });
}"""
"""Records every state #status goes through, however briefly (test code, run in the page)."""


def _start_and_cut_mid_speech(page: Page, proxy: CuttableProxy, stack) -> None:
    page.evaluate(RECORD_STATES)
    page.click("#start")
    _wait(
        lambda: bool(
            "".join(page.locator("#captions .caption.interim .transcript").all_inner_texts())
        ),
        30,
        "an interim caption (speech in progress)",
    )
    assert page.get_attribute("#status", "data-state") == "listening"
    assert stack.loop.run(_cut(proxy)) >= 1, "the page's bridge connection went through the proxy"


def test_a_dropped_connection_mid_speech_resumes_and_the_captions_complete(
    cuttable_page, stack
) -> None:
    page, proxy = cuttable_page
    page.goto(f"http://{proxy.address}/")
    assert page.is_checked("#resume"), "resuming is on by default"
    page.uncheck("input[name=target][value=pt]")
    _start_and_cut_mid_speech(page, proxy, stack)
    session = page.inner_text("#session")
    seen: list[str] = []

    def captioned() -> bool:
        seen[:] = _finals(page, "#captions")
        return CAPTIONED in normalize(" ".join(seen))

    try:
        _wait(captioned, 60, f"{CAPTIONED!r} after the connection was dropped")
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "live-captions-resumed.png"), full_page=True)
    _wait(lambda: page.get_attribute("#status", "data-state") == "listening", 20, "listening again")
    states = page.evaluate("window.liveStates")
    assert "reconnecting" in states, f"the page showed that it was reconnecting: {states}"
    assert "listening" in states[states.index("reconnecting") :], states
    assert "error" not in states, f"a dropped connection is not an error: {states}"
    assert page.inner_text("#session") == session, "the same session went on"
    # The speech around the cut was captioned too, and no utterance twice.
    assert "fellow americans" in normalize(" ".join(seen)).split(CAPTIONED)[0], seen
    assert all(a != b for a, b in itertools.pairwise(seen)), f"a final repeats: {seen}"
    segments = page.eval_on_selector_all(
        "#captions .caption.final", "captions => captions.map(c => Number(c.dataset.segment))"
    )
    assert segments == sorted(set(segments)), f"segment ids go on in order: {segments}"

    page.click("#stop")
    _wait(lambda: page.get_attribute("#status", "data-state") == "stopped", 20, "the stop")


def test_with_resuming_off_a_dropped_connection_is_an_error(cuttable_page, stack) -> None:
    page, proxy = cuttable_page
    page.goto(f"http://{proxy.address}/#resume=off")
    assert not page.is_checked("#resume"), "the fragment turns resuming off"
    _start_and_cut_mid_speech(page, proxy, stack)
    _wait(lambda: page.get_attribute("#status", "data-state") == "error", 20, "the error")
    assert "UNAVAILABLE" in page.inner_text("#status")
    assert "reconnecting" not in page.evaluate("window.liveStates")
