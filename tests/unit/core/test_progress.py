"""Progress, the one way long work reports itself, and its terminal bar for command lines."""

from lib.core.progress import Progress, TerminalBar, Ticker


def test_progress_text_rate_and_eta():
    p = Progress(12, 80, 4.0)
    assert p.fraction == 0.15 and p.rate == 3.0 and p.eta_s == 68 / 3
    assert p.text("images") == "12/80 images · 3.0/s · 23 s left"
    assert Progress(0, 0).fraction == 0.0 and Progress(5, 5, 1.0).text() == "5/5 · 5.0/s"


def test_the_terminal_bar_draws_on_stderr_and_closes_when_done(capsys):
    bar = TerminalBar("images")
    tick = Ticker(4, bar)
    for done in range(5):
        tick(done)
    err = capsys.readouterr().err
    assert "images" in err and "4/4" in err and bar._bar is None


def test_a_quiet_terminal_bar_draws_nothing(capsys):
    tick = Ticker(3, TerminalBar("epoch 1/1", quiet=True))
    for done in range(4):
        tick(done)
    assert capsys.readouterr().err == ""
