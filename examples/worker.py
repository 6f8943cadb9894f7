"""A worker for Procfile.example: polls the web process and logs what it sees."""
import os
import sys
import time
import urllib.request

url = os.environ.get("WEB_URL", "http://127.0.0.1:5000/")
every = float(os.environ.get("POLL_SECONDS", "2"))
print(f"worker {os.environ.get('PS')} polling {url} every {every}s")
n = 0
while True:
    time.sleep(every)
    n += 1
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            print(f"poll {n}: {resp.status} ({len(resp.read())} bytes)")
    except OSError as err:
        print(f"poll {n}: web not answering yet ({err})", file=sys.stderr)
