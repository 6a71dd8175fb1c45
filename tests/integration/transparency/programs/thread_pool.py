"""Read and fingerprint the notes in a thread pool."""
import hashlib
import os
import uuid
from concurrent.futures import ThreadPoolExecutor


def fingerprint(name):
    with open(os.path.join("notes", name), "rb") as f:
        data = f.read()
    return name, hashlib.sha1(data).hexdigest()[:10], str(uuid.uuid4())[:8]


with ThreadPoolExecutor(max_workers=3) as pool:
    results = list(pool.map(fingerprint, sorted(os.listdir("notes"))))
    extra = pool.submit(os.urandom, 4).result().hex()
for name, digest, tag in results:
    print(name, digest, tag)
print("extra", extra)
