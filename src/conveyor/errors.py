"""The errors a user can act on, and how each is shown.

    ConveyorError                 one message; exit code 2 unless said otherwise
     ├── spec.errors.SpecError     bad pipeline, config or parameters: located issues, all at once
     ├── runlog.base.RunNotFoundError
     ├── executors.run.RunRefused  a run cannot start or resume as asked
     ├── graph.kinds.base.NotReached   a step path that names nothing, or cannot run yet
     ├── spec.kindreg.KindPluginError, graph.kinds.KindError   a node kind plugin is broken
     ├── executors.pods.PodError   a pod command cannot do its work
     ├── executors.argo.render.RenderError, executors.argo.client.ArgoError
     ├── client.profiles.ProfileError, client.http.ServerError
     └── server.auth.AuthError

The CLI catches :class:`ConveyorError` once (``conveyor.cli.errors``), prints
:meth:`ConveyorError.show` and exits with :attr:`ConveyorError.exit_code`. Anything else is
a bug in conveyor, reported as such.
"""

from __future__ import annotations

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class ConveyorError(Exception):
    """An error with a message a user can act on (what went wrong, what to do)."""

    #: The process exit code when this error ends a command.
    exit_code: int = EXIT_BAD_INPUT
    #: A line added after the message, saying what to do next.
    hint: str | None = None

    def show(self) -> str:
        """The text the CLI prints: the message, prefixed, and the hint if any."""
        text = f"conveyor: {self}"
        return f"{text}; {self.hint}" if self.hint else text
