"""Walk the data folder and list what is there, with sizes."""
import os

print("top", sorted(os.listdir(".")))
with os.scandir("notes") as entries:
    for entry in sorted(entries, key=lambda e: e.name):
        print(entry.name, entry.is_file(), entry.stat().st_size)
for root, _dirs, files in os.walk("notes"):
    print("walk", root, sorted(files))
print("sizes", os.path.getsize("inventory.csv"), os.path.getsize("blob.bin"))
