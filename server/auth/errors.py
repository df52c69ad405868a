from server.core.errors import TooManyRequests, Unauthorized


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"

    def __init__(self) -> None:
        # One answer for an unknown account and a wrong password.
        super().__init__("email or password is wrong")


class LoginThrottled(TooManyRequests):
    code = "login_throttled"

    def __init__(self) -> None:
        super().__init__("too many failed logins; wait a few minutes")


class NotAuthenticated(Unauthorized):
    code = "not_authenticated"

    def __init__(self, detail: str = "log in or send a bearer token") -> None:
        super().__init__(detail)
