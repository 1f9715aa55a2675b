"""FastAPI dependencies for API authentication."""

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth import service
from app.auth.service import Caller
from app.db import SessionDep

bearer = HTTPBearer(auto_error=False, description="An API key from `offertrack create-api-key`.")


def require_api_key(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    return service.authenticate(session, credentials.credentials if credentials else None)


ApiKeyDep = Annotated[Caller, Depends(require_api_key)]
