module example.com/you/imageclient

go 1.19
