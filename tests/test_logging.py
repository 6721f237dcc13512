from mall.logging import scrub


def test_scrub_masks_id_numbers_and_phones() -> None:
    text = "id 34082319800101123X phone 13812345678 amount 1000"
    assert scrub(text) == "id 3408**********123X phone 138****5678 amount 1000"
