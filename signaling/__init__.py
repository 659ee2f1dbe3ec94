"""WebRTC signaling for bidroom's rooms: who may signal whom, the frames, glare, ICE servers.

    rules      who may signal whom, per room kind (a table)
    messages   offer / answer / candidate / bye, validated at the edge
    glare      the documented rule when both peers offer at once
    ice        ICE servers from settings, TURN credentials in coturn's REST format
    errors     the package's errors, each with a stable code

Pure: no socket, no clock, nothing of bidroom. The relay lives in bidroom (ws.py, hub.py,
media.py); media backends (the recorder, an SFU) will live here beside these modules.
"""
