"""FastAPI's BackgroundTasks notify endpoint, as the reference for bench/http.ts.

The endpoint schedules
`send_notification` with FastAPI's `BackgroundTasks` and answers at once; the task logs, sleeps
2 s (the demo work, after the response) and logs again. The router is mounted under
/api/notifications. Logging stays at Python's default level (WARNING),
as the Offload service runs with LOG_LEVEL=warn in the same benchmark.

    python3 -m uvicorn --app-dir bench/peers seed_app:app --host 127.0.0.1 --port PORT
"""

import asyncio
import logging

from fastapi import APIRouter, BackgroundTasks, FastAPI

logger = logging.getLogger(__name__)

router = APIRouter()


async def send_notification():
    """Background task - simulates work like sending notifications"""
    logger.info("Starting background notification task...")
    await asyncio.sleep(2)  # Simulate async work
    logger.info("Background notification sent successfully!")


@router.post("/notify")
async def notify(bg: BackgroundTasks):
    """Endpoint that schedules a background task"""
    bg.add_task(send_notification)
    return {"ok": True, "message": "Notification scheduled in background"}


app = FastAPI()
app.include_router(router, prefix="/api/notifications")
