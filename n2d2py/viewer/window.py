"""The viewer's outputs: PNG files, one self-contained HTML page, or a window (the only
user of pyplot: n/→ next, p/← previous, q quit)."""

import base64
import html
import io
import os
import sys

import numpy as np

NON_INTERACTIVE = ("agg", "pdf", "ps", "svg", "pgf", "cairo", "template")


def png_bytes(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, pil_kwargs={"compress_level": 6})
    return buf.getvalue()


def save_pages(done, out_dir, log=print):
    from n2d2py.atomic import atomic_write_bytes

    for name, _, fig in done:
        atomic_write_bytes(os.path.join(out_dir, name), png_bytes(fig))
    log(f"{len(done)} figure(s) written to {out_dir}/: {', '.join(n for n, _, _ in done)}")


def write_html(done, path, run_dir, log=print):
    """One self-contained page: every figure as a base64 PNG data URI with its caption."""
    from n2d2py.atomic import atomic_write_text

    title = html.escape(f"n2d2py run: {os.path.basename(os.path.abspath(run_dir))}")
    parts = [f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>",
             "<style>body{font-family:sans-serif;margin:1.5em;background:#fafafa}"
             "figure{margin:0 0 2em 0}img{max-width:100%;border:1px solid #ddd;background:#fff}"
             "figcaption{color:#444;margin-top:.3em}</style></head><body>",
             f"<h1>{title}</h1><p>{html.escape(os.path.abspath(run_dir))}</p>"]
    for name, caption, fig in done:
        data = base64.b64encode(png_bytes(fig)).decode("ascii")
        parts.append(f"<figure><img alt=\"{html.escape(caption)}\" "
                     f"src=\"data:image/png;base64,{data}\"><figcaption>"
                     f"{html.escape(caption[:1].upper() + caption[1:])} ({html.escape(name)})"
                     "</figcaption></figure>")
    parts.append("</body></html>\n")
    atomic_write_text(path, "\n".join(parts))
    log(f"{len(done)} figure(s) in {path}")


def display_problem():
    """Why no window can be opened (None when one can)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY is not set)"
    import matplotlib.pyplot as plt

    backend = str(plt.get_backend()).lower()
    if any(backend == b or backend.endswith("backend_" + b) for b in NON_INTERACTIVE) or \
            "inline" in backend:
        return f"the matplotlib backend {backend} cannot open windows"
    return None


def show_interactive(done):
    """One window, one figure at a time: n/→ next, p/← previous, q quit."""
    import matplotlib.pyplot as plt

    images = [np.asarray(fig.canvas.buffer_rgba()).copy() for fig in _drawn(done)]
    keys = {"keymap.back": ["backspace"], "keymap.forward": [], "keymap.pan": [],
            "keymap.quit": ["q", "ctrl+w"]}
    with plt.rc_context({k: v for k, v in keys.items() if k in plt.rcParams}):
        h, w = images[0].shape[:2]
        fig = plt.figure(figsize=(w / 100, h / 100), dpi=100)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        shown = ax.imshow(images[0])
        state = {"i": 0}

        def show(i):
            state["i"] = i % len(images)
            image = images[state["i"]]
            shown.set_data(image)
            shown.set_extent((-0.5, image.shape[1] - 0.5, image.shape[0] - 0.5, -0.5))
            ax.set_xlim(-0.5, image.shape[1] - 0.5)
            ax.set_ylim(image.shape[0] - 0.5, -0.5)
            name, caption, _ = done[state["i"]]
            fig.canvas.manager.set_window_title(
                f"{state['i'] + 1}/{len(images)}: {caption} — n/→ next, p/← previous, q quit")
            fig.canvas.draw_idle()

        def key(event):
            if event.key in ("right", "n", " ", "pagedown"):
                show(state["i"] + 1)
            elif event.key in ("left", "p", "pageup"):
                show(state["i"] - 1)

        fig.canvas.mpl_connect("key_press_event", key)
        show(0)
        plt.show()


def _drawn(done):
    for _, _, fig in done:
        fig.canvas.draw()
        yield fig
