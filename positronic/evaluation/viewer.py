"""A live window with the camera frames of the running iteration (``--driver.show_gui=True``).

Plain Tk, so it works on any X display, Xvfb included. Without a display ``open_viewer`` says so and the
run goes on headless.
"""

import logging
import tkinter
from collections.abc import Mapping
from typing import Any

import numpy as np

from positronic.dataset.video import is_image

logger = logging.getLogger(__name__)


def _photo_data(frame: np.ndarray) -> bytes:
    """``frame`` (uint8 (H, W, 3) RGB) as binary PPM, which Tk's PhotoImage reads natively."""
    height, width = frame.shape[:2]
    return b'P6 %d %d 255 ' % (width, height) + np.ascontiguousarray(frame).tobytes()


class CameraWindow:
    """A Tk window: one panel per camera (uint8 (H, W, 3) frames, side by side) and a status line.

    ``__call__`` shows one tick and processes window events; closing the window turns it into a no-op.
    """

    def __init__(self, title: str = 'positronic-inference sim'):
        self._root = tkinter.Tk()
        self._root.title(title)
        self._root.protocol('WM_DELETE_WINDOW', self.close)
        self._panels: dict[str, tuple[tkinter.Label, tkinter.PhotoImage]] = {}
        self._status = tkinter.Label(self._root, anchor='w', font=('TkFixedFont', 11))
        self._status.grid(row=2, column=0, columnspan=8, sticky='we')
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def panels(self) -> dict[str, tkinter.PhotoImage]:
        """The image shown for each camera so far, left to right."""
        return {name: photo for name, (_, photo) in self._panels.items()}

    def __call__(self, observation: Mapping[str, Any], status: str) -> None:
        if self._closed:
            return
        for name, frame in observation.items():
            if not is_image(frame):
                continue
            if name not in self._panels:
                column = len(self._panels)
                tkinter.Label(self._root, text=name).grid(row=0, column=column)
                label = tkinter.Label(self._root)
                label.grid(row=1, column=column)
                self._panels[name] = (label, tkinter.PhotoImage(master=self._root))
            label, photo = self._panels[name]
            photo.configure(data=_photo_data(frame), format='PPM')
            label.configure(image=photo)
        self._status.configure(text=status)
        self.refresh()

    def refresh(self) -> None:
        """Process pending window events (call while idle too, so the window stays responsive)."""
        if not self._closed:
            self._root.update()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._root.destroy()


def open_viewer(title: str = 'positronic-inference sim') -> CameraWindow | None:
    """A CameraWindow, or None (with a message) when there is no display to open it on."""
    try:
        return CameraWindow(title)
    except tkinter.TclError as error:
        print(f'show_gui: no display to open a window on ({error}); continuing headless')
        return None
