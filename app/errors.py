"""Domain errors. Services raise these; app.main maps them to HTTP in one place."""


class AppError(Exception):
    status_code = 400
    title = "Bad request"
    # The page a browser gets; errors a visitor can fix (a mistyped code) show the form again.
    web_template = "error.html"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def headers(self) -> dict[str, str]:
        return {}


class NotFound(AppError):
    status_code = 404
    title = "Not found"


class Conflict(AppError):
    """The state forbids it (a name taken, a step done); ``loc`` names the field, if one."""

    status_code = 409
    title = "Conflict"

    def __init__(self, detail: str, loc: tuple[str | int, ...] = ()) -> None:
        super().__init__(detail)
        self.loc = loc


class Unauthorized(AppError):
    status_code = 401
    title = "Unauthorized"


class Unprocessable(AppError):
    """Valid JSON whose content breaks a business rule; ``loc`` names the field."""

    status_code = 422
    title = "Unprocessable"

    def __init__(self, detail: str, loc: tuple[str | int, ...] = ()) -> None:
        super().__init__(detail)
        self.loc = loc


class ServiceUnavailable(AppError):
    status_code = 503
    title = "Service unavailable"
    retry_after_seconds = 10

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class DatabaseUnavailable(ServiceUnavailable):
    """The database cannot be reached just now (restarting, failing over, overloaded)."""

    title = "Temporarily unavailable"

    def __init__(self, detail: str = "") -> None:
        super().__init__(
            detail or "This service is briefly unavailable. Please try again in a minute."
        )
