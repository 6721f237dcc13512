import logging
from collections.abc import Iterator

import pytest
import structlog

from mall.logging import configure_logging, scrub


def test_scrub_masks_id_numbers_and_phones() -> None:
    text = "id 34082319800101123X phone 13812345678 amount 1000"
    assert scrub(text) == "id 3408**********123X phone 138****5678 amount 1000"


@pytest.fixture
def own_handler() -> Iterator[None]:
    """The app's handler, writing to the captured stderr; the previous ones put back after."""
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in before:
        root.addHandler(handler)
    root.setLevel(level)


def test_app_and_library_lines_render_and_are_scrubbed(
    own_handler: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO")
    log = structlog.get_logger("mall.test")
    log.info("payment_made", note="phone 13812345678")
    logging.getLogger("some.library").warning("holder %s", "34082319800101123X")
    try:
        raise ValueError("card of 13812345678 refused")
    except ValueError:
        log.exception("unhandled_error", error_class="ValueError")
    err = capsys.readouterr().err
    assert "Logging error" not in err  # the handler formats structlog's events itself
    assert "payment_made" in err
    assert "unhandled_error" in err
    assert "Traceback" in err
    assert "card of 138****5678 refused" in err
    assert "3408**********123X" in err
    assert "13812345678" not in err
    assert "34082319800101123X" not in err
